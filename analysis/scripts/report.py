#!/usr/bin/env python3
"""A one-page Markdown report of lpi-analyze's results for one or more stores
(docs/STORE.md, "The `analysis` group"): the stores, the paper's Tables 2, 3
and 4 filled with this run's numbers (bootstrap 95% intervals in brackets)
next to the paper's published values, a per-relation table and links to the
figures. Tables 2, 3 and 4 are also printed as plain text on stdout.

    /usr/bin/python3 analysis/scripts/report.py MOE.h5 DENSE.h5 --out report.md [--figures figs]

A store without /analysis: an error naming it, exit code 2.
"""
import os
import sys
from dataclasses import dataclass, field

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpi_store  # noqa: E402
from lpi_store import (FAMILY_TITLE, condition_label, format_interval,  # noqa: E402
                       format_number, format_step)

# The paper's published values ("Deconstructing pre-training: MoE vs dense").
# Table 2, FFN neurons: mean J_stab (%) over 10K-70K and 100K-600K, mean R_t (%).
PAPER_TABLE2 = [("OLMo", 6.3, 6.1, 26.4), ("OLMoE", 22.2, 25.3, 48.9)]
PAPER_TABLE2_RANGES = ("10K-70K", "100K-600K")
# Table 3: FFN rho_avg, sigma_rel, ATTN rho_avg, sigma_rel.
PAPER_TABLE3 = [("OLMo (10K-600K)", 0.54, 5.01, 0.49, 8.64),
                ("OLMoE (10K-600K)", 0.97, 0.37, 0.97, 0.49),
                ("OLMoE (10K-1.2M)", 0.97, 0.47, 0.95, 0.76)]
# Table 4: performance drop (%) from masking, by condition.
PAPER_TABLE4 = [("OLMoE", {"heads:1": 0.06, "heads:10": 9.44, "ffn:0.01": 35.47}),
                ("OLMo", {"heads:1": 16.46, "heads:10": 50.43, "ffn:0.01": 96.19})]
PAPER = "paper: "
# The paper's non-consecutive overlap of top-1% sets, 100K against 300K steps
# (model, family, overlap in %, random in %, what the paper calls it).
PAPER_OVERLAP = [("OLMoE", "ffn", 13.0, 0.4, "neurons that survive"),
                 ("OLMoE", "attn", 26.73, 0.5, "overlap")]
PAPER_OVERLAP_STEPS = (100_000, 300_000)
# Point values the paper quotes in its text: (model, family, metric, step, value,
# what). metric: jaccard (%, the pair ending at the step), gain (R_t %, the
# pair ending at the step; step None: mean over the consolidation range),
# layer_mean (Figure 2's mean importance over layers at the step).
PAPER_POINTS = [
    ("OLMoE", "ffn", "jaccard", 70_000, 27.0, "rises to"),
    ("OLMoE", "ffn", "jaccard", 200_000, 17.1, "dips to"),
    ("OLMoE", "ffn", "jaccard", 1_200_000, 44.2, "climbs to"),
    ("OLMo", "ffn", "jaccard", 70_000, 10.2, "peaks at"),
    ("OLMo", "ffn", "jaccard", 600_000, 4.9, "declines to"),
    ("OLMoE", "attn", "jaccard", 100_000, 44.9, "rises to"),
    ("OLMoE", "attn", "jaccard", 200_000, 33.4, "dips to"),
    ("OLMoE", "attn", "jaccard", 1_200_000, 57.7, "reaches"),
    ("OLMo", "attn", "jaccard", 70_000, 24.6, "peaks at"),
    ("OLMo", "attn", "jaccard", 600_000, 15.1, "declines to"),
    ("OLMoE", "attn", "gain", 0, 21.5, "starts at (first pair)"),
    ("OLMoE", "attn", "gain", None, 33.5, "plateau 33-34% after 200K (consolidation mean)"),
    ("OLMoE", "ffn", "layer_mean", 100_000, 0.298, "reaches"),
    ("OLMoE", "ffn", "layer_mean", 500_000, 0.328, "peaks at"),
    ("OLMo", "ffn", "layer_mean", 30_000, 0.064, "dips to"),
    ("OLMo", "ffn", "layer_mean", 600_000, 0.270, "climbs to"),
    ("OLMoE", "attn", "layer_mean", 0, 0.319, "starts at (first checkpoint)"),
]


@dataclass
class Table:
    """A titled table of strings, rendered as Markdown or as aligned text."""
    title: str
    header: list
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def markdown(self):
        lines = [f"### {self.title}", "",
                 "| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines += [""] + [f"{note}  " for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def text(self):
        widths = [max(len(r[i]) for r in [self.header] + self.rows)
                  for i in range(len(self.header))]
        def line(row):
            return "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        out = [self.title, line(self.header), line(["-" * w for w in widths])]
        out += [line(row) for row in self.rows] + self.notes
        return "\n".join(out) + "\n"


def store_lines(stores):
    """One bullet per store: names, shape, checkpoints, prompts, options."""
    lines = []
    for s in stores:
        o = s.options
        experts = (f", {s.num_experts} experts (top-{s.experts_per_token})"
                   if s.num_experts else ", dense")
        steps = (f"steps {format_step(s.step[0])}-{format_step(s.step[-1])}"
                 if s.step.size else "no steps")
        ranges = ", ".join(s.range_text(q) for q in range(s.ranges))
        compared = f"; compared with {o['compared_with']}" if o.get("compared_with") else ""
        sizes = ", ".join(f"{FAMILY_TITLE[fam]} {a['neurons']} neurons, top set {a['top_count']}"
                          for fam, a in s.family_attrs.items() if "neurons" in a and "top_count" in a)
        sizes = f" ({sizes})" if sizes else ""
        lines.append(
            f"- **{s.label}** (`{s.path}`): model {s.model_name}, {s.architecture}, "
            f"{s.num_layers} layers{experts}; {s.step.size} of {s.checkpoints_total} "
            f"checkpoints analysed, {steps}; {s.prompt_count} of {s.prompts_total} prompts, "
            f"{len(s.relations)} relations{sizes}. Analysis: fraction {o.get('fraction', 'n/a')}, "
            f"bootstrap {o.get('bootstrap', 'n/a')}, seed {o.get('seed', 'n/a')}, top set per "
            f"{o.get('top_scope', 'n/a')}, gain share per {o.get('gain_scope', 'n/a')}, "
            f"R_t ranked by {o.get('gain_rank', 'n/a')}, its baseline at the "
            f"{'gain' if o.get('gain_baseline') == 'same' else o.get('gain_baseline', 'n/a')} "
            f"scope, aggregate {o.get('aggregate', 'n/a')}, expert mean over "
            f"{o.get('expert_mean', 'n/a')} prompts, layer importance "
            f"{o.get('layer_importance', 'n/a')}, "
            f"partial {o.get('partial', 'n/a')}; ranges {ranges}{compared}; written by "
            f"lpi-analyze {o.get('tool_version', '')}: `{o.get('command', '')}`.")
    return lines


def interval_note(stores):
    """What the bracketed intervals are (lpi-analyze's `confidence`)."""
    levels = sorted({float(s.options.get("confidence", 0.95)) for s in stores})
    level = " / ".join(f"{100 * c:g}%" for c in levels)
    return (f"[lo, hi]: {level} bootstrap interval (prompts resampled within relations); "
            "scope: all prompts.")


def shared_range_texts(stores, count):
    """The text of the first `count` ranges if every store has the same ones,
    else None (the cells then name their range)."""
    texts = {tuple(s.range_text(q) for q in range(min(count, s.ranges))) for s in stores}
    return list(texts.pop()) if len(texts) == 1 else None


def table2(stores, fam):
    """Paper Table 2 for one family: mean J_stab (%) over the first two
    ranges, mean R_t (%) over the consolidation range, the random baselines."""
    shared = shared_range_texts(stores, 2)
    names = shared + ["(none)"] * (2 - len(shared)) if shared else ["range 1", "range 2"]
    consolidation = {s.range_text(s.consolidation) for s in stores}
    same_rt = len(consolidation) == 1
    rt = consolidation.pop() if same_rt else "consolidation"
    header = ["Model", f"Mean J_stab (%) {names[0]}", f"Mean J_stab (%) {names[1]}",
              f"Mean R_t (%) {rt}", "Random J (%) whole", f"Random R_t (%) {rt}"]
    table = Table(f"Table 2 ({FAMILY_TITLE[fam]} neurons): neuron-level stability", header)
    for s in stores:
        d, last, cons = s.family[fam], s.ranges - 1, s.consolidation
        cells = [s.label]
        for q in range(2):
            if q >= cons:
                cells.append("n/a")
                continue
            cell = format_interval(s.triple(fam, "jaccard_mean", (0, q)), scale=100)
            cells.append(cell if shared else f"{cell} ({s.range_text(q)})")
        cell = format_interval(s.triple(fam, "gain_concentration_mean", (0, cons)), scale=100)
        cells.append(cell if same_rt else f"{cell} ({s.range_text(cons)})")
        cells.append(format_number(d["jaccard_mean_random"][last], scale=100))
        cells.append(format_number(d["gain_concentration_mean_random"][0, cons], scale=100))
        table.rows.append(cells)
    if fam == "ffn":
        for name, j1, j2, r in PAPER_TABLE2:
            table.rows.append([PAPER + name, f"{j1} ({PAPER_TABLE2_RANGES[0]})",
                               f"{j2} ({PAPER_TABLE2_RANGES[1]})", f"{r} (\"during consolidation\")",
                               "-", "-"])
    table.notes.append(interval_note(stores) + " \"whole\": the last range (the whole "
                       "trajectory); R_t: the mean over the consolidation range "
                       "(lpi-analyze --consolidation)." +
                       (" Paper rows: the paper's published values." if fam == "ffn" else
                        " The paper gives no ATTN Table 2 values."))
    return table


def overlap_table(stores, step_scale):
    """The top-1% sets of two chosen steps (lpi-analyze --overlap): Jaccard and
    survival (the share of the first set still in the second), with random sets."""
    header = ["Model", "Family", "Steps", "J (%)", "Random J (%)", "Survival (%)",
              "Random survival (%)"]
    table = Table("Top-1% set overlap between non-consecutive steps", header)
    for s in stores:
        for fam in ("ffn", "attn"):
            d = s.family[fam]
            for o in range(len(s.overlap_first)):
                table.rows.append([
                    s.label, FAMILY_TITLE[fam],
                    f"{format_step(s.overlap_first[o])} / {format_step(s.overlap_second[o])}",
                    format_interval(s.triple(fam, "overlap_jaccard", (0, o)), scale=100),
                    format_number(d["overlap_jaccard_random"][o], scale=100, digits=2),
                    format_interval(s.triple(fam, "overlap_survival", (0, o)), scale=100),
                    format_number(d["overlap_survival_random"][o], scale=100, digits=2)])
    a, b = (format_step(x) for x in PAPER_OVERLAP_STEPS)
    for model, fam, value, random, what in PAPER_OVERLAP:
        table.rows.append([PAPER + model, FAMILY_TITLE[fam], f"{a} / {b}", f"{value} ({what})",
                           f"{random}", "-", "-"])
    scale = f" (store steps x {step_scale:g})" if step_scale != 1 else ""
    table.notes.append("J = |A & B| / |A | B|, survival = |A & B| / |A| for the top sets A, B "
                       "of the two steps; random: the stored random sets of the same steps. "
                       "The paper's 13% is \"neurons that survive\", its 26.73% an "
                       f"\"overlap\"; which of the two it computed is not stated{scale}. "
                       + interval_note(stores))
    return table


def nearest(steps, step):
    return int(np.argmin(np.abs(steps.astype(np.float64) - step)))


def points_table(stores, step_scale):
    """The paper's quoted point values beside this run's at the nearest
    analysed step (paper step / step_scale)."""
    header = ["Paper", "Paper value", "This run", "Step used", "Value [lo, hi]"]
    table = Table("The paper's point values beside this run's", header)
    for model, fam, metric, step, value, what in PAPER_POINTS:
        moe = model == "OLMoE"
        matching = [s for s in stores if (s.num_experts > 0) == moe]
        name = (f"{model} {FAMILY_TITLE[fam]} "
                f"{ {'jaccard': 'J_stab', 'gain': 'R_t', 'layer_mean': 'mean importance'}[metric]} "
                f"{what}" + ("" if step in (None, 0) else f" {format_step(step)}"))
        shown = f"{value}%" if metric != "layer_mean" else f"{value}"
        if not matching:
            table.rows.append([name, shown, "(no store of this kind)", "-", "-"])
        for s in matching:
            scale = 1 if metric == "layer_mean" else 100
            if metric == "gain" and step is None:
                q = s.consolidation
                cell = format_interval(s.triple(fam, "gain_concentration_mean", (0, q)),
                                       scale=scale)
                table.rows.append([name, shown, s.label, s.range_text(q), cell])
                continue
            if metric == "layer_mean":
                c = 0 if step == 0 else nearest(s.step, step / step_scale)
                cell = format_interval(s.triple(fam, "layer_mean", (0, c)), digits=3)
                table.rows.append([name, shown, s.label, format_step(s.step[c]), cell])
                continue
            # A pair statistic: the pair whose second step is nearest (pair q ends at step[q+1]).
            q = 0 if step == 0 else max(0, nearest(s.step[1:], step / step_scale))
            dataset = "jaccard" if metric == "jaccard" else "gain_concentration"
            cell = format_interval(s.triple(fam, dataset, (0, q)), scale=scale)
            table.rows.append([name, shown, s.label, format_step(s.step[q + 1]), cell])
    table.notes.append(f"This run's step = the paper's step / {step_scale:g} (--step-scale), the "
                       "nearest analysed checkpoint; J and R_t belong to the pair that ends at "
                       "that step. Mean importance is in each model's own units (nats summed "
                       "over a layer's neurons), so only its shape over steps compares. "
                       + interval_note(stores))
    return table


def table3(stores):
    """Paper Table 3: rho_avg and sigma_rel of the layer profiles, FFN and
    ATTN, per store and step range."""
    header = ["Model (range)", "FFN rho_avg", "FFN sigma_rel", "ATTN rho_avg", "ATTN sigma_rel"]
    table = Table("Table 3: layer-level stability", header)
    for s in stores:
        for q in range(s.ranges):
            whole = ", whole" if q == s.ranges - 1 else ""
            cells = [f"{s.label}, {s.range_text(q)}{whole}"]
            for fam in ("ffn", "attn"):
                for name in ("rho_avg", "sigma_rel"):
                    cells.append(format_interval(s.triple(fam, name, (0, q)), digits=2))
            table.rows.append(cells)
    for name, *values in PAPER_TABLE3:
        table.rows.append([PAPER + name] + [f"{v:.2f}" for v in values])
    table.notes.append("rho_avg: layer-distribution consistency; sigma_rel: cross-step "
                       "coefficient of variation. " + interval_note(stores))
    return table


def conditions_of(stores):
    """Masking conditions of the run's stores, then the paper's, in order."""
    conditions = []
    for s in stores:
        conditions += [c for c in (s.ablation or {}).get("condition", []) if c not in conditions]
    for _, values in PAPER_TABLE4:
        conditions += [c for c in values if c not in conditions]
    return conditions


def table4(stores):
    """Paper Table 4: mean HIT@10 drop (%) from masking, per condition."""
    conditions = conditions_of(stores)
    header = ["Model"] + [f"{condition_label(c)} ({c})" for c in conditions]
    table = Table("Table 4: performance drop (%) from masking", header)
    for s in stores:
        if s.ablation is None:
            table.rows.append([s.label] + ["n/a (no ablation)"] * len(conditions))
            continue
        run = s.ablation["condition"]
        table.rows.append([s.label] + [
            format_interval(s.triple("ablation", "drop_percent_mean", (0, run.index(c))),
                            digits=2) if c in run else "n/a" for c in conditions])
    for name, values in PAPER_TABLE4:
        table.rows.append([PAPER + name] + [f"{values[c]:.2f}" if c in values else "-"
                                            for c in conditions])
    floors = sorted({float(s.options.get("ablation_min_hit", 0.0)) for s in stores})
    floor = (" and at least " + "/".join(f"{v:g}" for v in floors)) if floors != [0.0] else ""
    table.notes.append("Drop = 100 (HIT@10 before - after) / before, mean over the analysed "
                       f"checkpoints whose unmasked HIT@10 is above 0{floor}. " + interval_note(stores))
    return table


def relation_table(stores):
    """Per relation (scopes 1..): FFN mean J over the whole trajectory and the
    top-10-heads drop."""
    header = ["Model", "Relation", "FFN mean J_stab (%) whole", "Top-10 heads drop (%)"]
    table = Table("Per relation", header)
    for s in stores:
        heads10 = None
        if s.ablation is not None and "heads:10" in s.ablation["condition"]:
            heads10 = s.ablation["condition"].index("heads:10")
        for r in range(1, len(s.scope)):
            j = format_interval(s.triple("ffn", "jaccard_mean", (r, s.ranges - 1)), scale=100)
            drop = ("n/a" if heads10 is None else
                    format_interval(s.triple("ablation", "drop_percent_mean", (r, heads10))))
            table.rows.append([s.label, s.scope[r], j, drop])
    return table


def figure_lines(figures_dir, report_path):
    """Links to the PNGs, relative to the report's folder."""
    base = os.path.dirname(os.path.abspath(report_path))
    lines = []
    for name, caption in lpi_store.FIGURES:
        path = os.path.join(figures_dir, name)
        link = os.path.relpath(os.path.abspath(path), base)
        missing = "" if os.path.exists(path) else " (missing)"
        lines.append(f"- [{caption}]({link}){missing}")
    return lines


def report(stores, tables, figures_dir, report_path):
    names = " vs ".join(s.label for s in stores)
    parts = [f"# Pre-training dynamics: {names}", "",
             "Reproduction of the paper's Tables 2-4 (\"Deconstructing pre-training\", "
             "MoE vs dense) from lpi-analyze's results; rows marked \"paper:\" are the "
             "paper's published values (OLMo-7B, OLMoE-1B-7B).", "", "## Stores", ""]
    parts += store_lines(stores) + ["", "## Tables", ""]
    parts += [t.markdown() for t in tables]
    if figures_dir:
        parts += ["## Figures", ""] + figure_lines(figures_dir, report_path)
    return "\n".join(parts).rstrip() + "\n"


def main():
    parser = lpi_store.argument_parser(__doc__)
    parser.add_argument("--out", required=True, metavar="report.md")
    parser.add_argument("--figures", metavar="DIR", help="link the PNGs of figures.py in DIR")
    parser.add_argument("--step-scale", type=float, default=1.0, metavar="X",
                        help="the paper's steps are X times this run's (the study: 1000)")
    args = parser.parse_args()
    if not args.step_scale > 0:
        parser.error("--step-scale must be positive")
    stores = lpi_store.load_or_exit(args.stores)
    main_tables = [table2(stores, "ffn"), table2(stores, "attn"), table3(stores), table4(stores)]
    tables = main_tables + [overlap_table(stores, args.step_scale),
                            points_table(stores, args.step_scale), relation_table(stores)]
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(report(stores, tables, args.figures, args.out))
    print("\n".join(t.text() for t in main_tables))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
