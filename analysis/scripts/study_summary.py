#!/usr/bin/env python3
"""The study's summary over seeds (deploy/run-study.sh): for the MoE and the
dense stores of every seed, the paper's Tables 2-4 and the 100K/300K
overlap, each seed's value with its bootstrap interval, then the mean and
the spread (min-max) of the seeds' point estimates, beside the paper's
values. Markdown to --out, the same as text on stdout.

    /usr/bin/python3 analysis/scripts/study_summary.py S1-MOE.h5 S1-DENSE.h5 S2-MOE.h5 ... --out study.md

Stores are grouped by architecture (num_experts > 0: MoE); each needs the
/analysis group of lpi-analyze, run with the same ranges on all of them.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpi_store  # noqa: E402
from lpi_store import FAMILY_TITLE, format_interval, format_number  # noqa: E402
from report import PAPER_OVERLAP, PAPER_TABLE2, PAPER_TABLE3, PAPER_TABLE4, Table  # noqa: E402

KINDS = (("MoE", True), ("dense", False))
PAPER_NAME = {True: "OLMoE", False: "OLMo"}


def range_index(store, first, last):
    for q in range(store.ranges):
        if store.range_first[q] == first and store.range_last[q] == last:
            return q
    return None


def overlap_index(store, first, second):
    for o in range(len(store.overlap_first)):
        if store.overlap_first[o] == first and store.overlap_second[o] == second:
            return o
    return None


def seed_rows(stores, moe, metrics):
    """Rows (label, cells...) per store of one kind, then the mean and the
    spread over them. metrics: (title, fn(store) -> (value, lo, hi) or None, scale, digits)."""
    mine = [s for s in stores if (s.num_experts > 0) == moe]
    rows, points = [], [[] for _ in metrics]
    for s in mine:
        cells = [s.label]
        for i, (_, fn, scale, digits) in enumerate(metrics):
            triple = fn(s)
            if triple is None:
                cells.append("n/a")
                continue
            bare = not (np.isfinite(triple[1]) or np.isfinite(triple[2]))  # a baseline
            cells.append(format_number(triple[0], digits=digits, scale=scale) if bare else
                         format_interval(triple, digits=digits, scale=scale))
            points[i].append(triple[0] * scale)
        rows.append(cells)
    if len(mine) > 1:
        mean, spread = [f"mean of {len(mine)} seeds"], ["spread (min-max)"]
        for i, (_, _, _, digits) in enumerate(metrics):
            v = np.array([x for x in points[i] if np.isfinite(x)])
            mean.append(f"{v.mean():.{digits}f}" if v.size else "n/a")
            spread.append(f"{v.min():.{digits}f}-{v.max():.{digits}f}" if v.size else "n/a")
        rows += [mean, spread]
    return rows


def seed_table(title, stores, metrics):
    """A table of the metrics: the MoE stores' rows, then the dense ones'."""
    table = Table(title, ["Model"] + [m[0] for m in metrics])
    for _, moe in KINDS:
        table.rows += seed_rows(stores, moe, metrics)
    return table


def table2(stores, fam):
    q1 = stores[0]
    names = [q1.range_text(q) for q in range(min(2, q1.consolidation))]
    cons = q1.range_text(q1.consolidation)
    metrics = [(f"Mean J_stab (%) {names[i]}",
                (lambda s, i=i: s.triple(fam, "jaccard_mean", (0, i)) if i < s.consolidation
                 else None), 100, 1) for i in range(len(names))]
    metrics.append((f"Mean R_t (%) {cons}",
                    lambda s: s.triple(fam, "gain_concentration_mean", (0, s.consolidation)),
                    100, 1))
    metrics.append((f"Random R_t (%) {cons}",
                    lambda s: (s.family[fam]["gain_concentration_mean_random"][0, s.consolidation],
                               np.nan, np.nan), 100, 1))
    table = seed_table(f"Table 2 ({FAMILY_TITLE[fam]} neurons), per seed", stores, metrics)
    if fam == "ffn":
        for name, j1, j2, r in PAPER_TABLE2:
            table.rows.append([f"paper: {name}", f"{j1}", f"{j2}", f"{r}", "-"])
    return table


def table3(stores, first, last, paper_label):
    metrics = []
    for fam in ("ffn", "attn"):
        for name in ("rho_avg", "sigma_rel"):
            metrics.append((f"{FAMILY_TITLE[fam]} {name}",
                            (lambda s, fam=fam, name=name:
                             None if range_index(s, first, last) is None else
                             s.triple(fam, name, (0, range_index(s, first, last)))), 1, 2))
    table = seed_table(f"Table 3, steps {first}-{last}, per seed", stores, metrics)
    for name, *values in PAPER_TABLE3:
        if paper_label in name:
            table.rows.append([f"paper: {name}"] + [f"{v:.2f}" for v in values])
    return table


def table4(stores):
    conditions = []
    for s in stores:
        conditions += [c for c in (s.ablation or {}).get("condition", []) if c not in conditions]
    metrics = [(f"{c} drop (%)",
                (lambda s, c=c: None if s.ablation is None or c not in s.ablation["condition"]
                 else s.triple("ablation", "drop_percent_mean",
                               (0, s.ablation["condition"].index(c)))), 1, 2)
               for c in conditions]
    table = seed_table("Table 4 (HIT@10 drop from masking), per seed", stores, metrics)
    for name, values in PAPER_TABLE4:
        table.rows.append([f"paper: {name}"] + [f"{values[c]:.2f}" if c in values else "-"
                                                for c in conditions])
    return table


def overlap_table(stores, first, second):
    metrics = []
    for fam in ("ffn", "attn"):
        for name in ("overlap_jaccard", "overlap_survival"):
            metrics.append((f"{FAMILY_TITLE[fam]} {name.split('_')[1]} (%)",
                            (lambda s, fam=fam, name=name:
                             None if overlap_index(s, first, second) is None else
                             s.triple(fam, name, (0, overlap_index(s, first, second)))), 100, 1))
            metrics.append((f"random", (lambda s, fam=fam, name=name:
                                        None if overlap_index(s, first, second) is None else
                                        (s.family[fam][name + "_random"][
                                            overlap_index(s, first, second)], np.nan, np.nan)),
                            100, 2))
    table = seed_table(f"Top-1% set overlap, steps {first} and {second}, per seed", stores,
                       metrics)
    for model, fam, value, random, what in PAPER_OVERLAP:
        # Under the column of its family and of what the paper calls it.
        cells = ["-"] * len(metrics)
        at = (0 if fam == "ffn" else 4) + (2 if "survive" in what else 0)
        cells[at], cells[at + 1] = f"{value}", f"{random}"
        table.rows.append([f"paper: {model} 100K/300K ({what})"] + cells)
    return table


def main():
    parser = lpi_store.argument_parser(__doc__)
    parser.add_argument("--out", required=True, metavar="study.md")
    parser.add_argument("--overlap", default="100:300", metavar="FIRST:SECOND")
    parser.add_argument("--table3", default="10:600,100:600,10:1200", metavar="RANGES")
    args = parser.parse_args()

    def steps(text, option):
        try:
            a, b = (int(x) for x in text.split(":"))
        except ValueError:
            parser.error(f"{option} '{text}': expected FIRST:SECOND steps")
        return a, b

    table3_ranges = [steps(t, "--table3") for t in args.table3.split(",")]
    first, second = steps(args.overlap, "--overlap")
    stores = lpi_store.load_or_exit(args.stores)
    tables = [table2(stores, "ffn"), table2(stores, "attn")]
    for a, b in table3_ranges:
        tables.append(table3(stores, a, b, "10K-1.2M" if b > 600 else "10K-600K"))
    tables += [table4(stores), overlap_table(stores, first, second)]
    parts = ["# The study: per seed and over seeds", "",
             "Each seed's value with its 95% bootstrap interval over prompts (100 resamples "
             "within relations), then the mean and the spread of the seeds' point estimates. "
             "Stores: " + ", ".join(f"`{s.path}`" for s in stores) + ".", ""]
    parts += [t.markdown() for t in tables]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    print("\n".join(t.text() for t in tables))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
