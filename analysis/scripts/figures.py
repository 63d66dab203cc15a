#!/usr/bin/env python3
"""The paper's Figures 1-5 from the /analysis group of one or more stores
(lpi-analyze's results; docs/STORE.md), as PNGs in DIR:

    fig1_jaccard.png              Top-1% Jaccard between consecutive checkpoints
    fig1b_gain_concentration.png  positive-gain concentration R_t per pair
    fig2_mean_importance.png      mean layer importance per step
    fig3_ffn_layers.png           FFN layer profiles at the snapshot steps
    fig4_attn_layers.png          ATTN layer profiles at the snapshot steps
    fig5_ablation.png             HIT@10 before and under each masking condition
    fig5b_ablation_drop.png       the HIT@10 drop (%) per step under each condition

All curves are scope 0 (all analysed prompts); bands are the bootstrap
intervals (_lo, _hi). Sizes are fixed so that tests can check them: figures
1, 1b and 2 are 12 x 4.5 in (an FFN and an ATTN panel); figures 3, 4 and 5
have one 6 x 4.5 in panel per store, at most 3 per row. Pixels = inches x dpi.

    /usr/bin/python3 analysis/scripts/figures.py MOE.h5 DENSE.h5 --out figs [--dpi 100]

A store without /analysis: an error naming it, exit code 2.
"""
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpi_store  # noqa: E402
from lpi_store import FAMILIES, FAMILY_TITLE, condition_label, format_step  # noqa: E402

PANEL_INCHES = (6.0, 4.5)
MAX_COLUMNS = 3
STEP_AXIS = FuncFormatter(lambda x, _: format_step(x) if x >= 0 else "")


def store_colors(stores):
    """One color per store, the same in every figure."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(len(stores))]


def family_figure(title):
    """The 12 x 4.5 in figure with an FFN and an ATTN panel."""
    fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES[0], PANEL_INCHES[1]),
                             layout="constrained")
    fig.suptitle(title)
    return fig, dict(zip(FAMILIES, axes))


def store_figure(count, title):
    """One panel per store, at most MAX_COLUMNS per row; unused slots hidden."""
    cols = min(count, MAX_COLUMNS)
    rows = math.ceil(count / MAX_COLUMNS)
    fig, axes = plt.subplots(rows, cols, squeeze=False, layout="constrained",
                             figsize=(cols * PANEL_INCHES[0], rows * PANEL_INCHES[1]))
    fig.suptitle(title)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def band_line(ax, x, values, lo, hi, color, label, scale=1.0, **style):
    """A line with markers and its bootstrap band (NaN points leave gaps)."""
    ax.plot(x, values * scale, color=color, label=label, marker="o", markersize=3, **style)
    if np.isfinite(lo).any() and np.isfinite(hi).any():
        ax.fill_between(x, lo * scale, hi * scale, color=color, alpha=0.2, linewidth=0)


def step_axis(ax, ylabel):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(STEP_AXIS)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def pair_metric_figure(stores, metric, random_of, title, ylabel):
    """Figures 1 and 1b: a per-pair metric (scope 0, in %) at the later step of
    each pair, with its band and the random baseline dashed."""
    fig, axes = family_figure(title)
    for store, color in zip(stores, store_colors(stores)):
        x = store.step[1:]
        for fam, ax in axes.items():
            d = store.family[fam]
            band_line(ax, x, d[metric][0], d[metric + "_lo"][0], d[metric + "_hi"][0],
                      color, store.label, scale=100)
            ax.plot(x, random_of(d) * 100, color=color, linestyle="--", linewidth=1,
                    label=f"{store.label}, random")
    for fam, ax in axes.items():
        ax.set_title(f"{FAMILY_TITLE[fam]} neurons")
        step_axis(ax, ylabel)
        ax.legend(fontsize="small")
    return fig


def fig_jaccard(stores):
    """Figure 1: Top-1% Jaccard J_stab,t between consecutive checkpoints."""
    return pair_metric_figure(stores, "jaccard", lambda d: d["jaccard_random"],
                              "Top-1% neurons: Jaccard overlap of consecutive checkpoints",
                              "Jaccard (%)")


def fig_gain_concentration(stores):
    """Figure 1b: share R_t of the positive importance gain held by the top-1%
    neurons of the gain, per pair."""
    return pair_metric_figure(stores, "gain_concentration",
                              lambda d: d["gain_concentration_random"][0],
                              "Positive-gain concentration of the top-1% neurons",
                              "R_t (%)")


def fig_mean_importance(stores):
    """Figure 2: mean over layers of the layer importance, per step."""
    fig, axes = family_figure("Mean layer importance per step")
    for store, color in zip(stores, store_colors(stores)):
        for fam, ax in axes.items():
            d = store.family[fam]
            band_line(ax, store.step, d["layer_mean"][0], d["layer_mean_lo"][0],
                      d["layer_mean_hi"][0], color, store.label)
    for fam, ax in axes.items():
        ax.set_title(f"{FAMILY_TITLE[fam]} layers")
        step_axis(ax, "mean layer importance (nats)")
        ax.legend(fontsize="small")
    return fig


def layer_figure(stores, fam):
    """Figures 3 and 4: per store, the layer profile I(c, l) at each snapshot
    checkpoint (one line per snapshot, band = bootstrap interval)."""
    fig, axes = store_figure(len(stores), f"{FAMILY_TITLE[fam]} layer importance "
                                          "at snapshot steps")
    for store, ax in zip(stores, axes):
        d = store.family[fam]
        ax.set_title(store.label)
        if store.snapshot.size == 0:
            ax.text(0.5, 0.5, "no snapshot checkpoints", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        colors = plt.cm.viridis(np.linspace(0, 0.9, store.snapshot.size))
        layers = np.arange(store.num_layers)
        for c, color in zip(store.snapshot, colors):
            band_line(ax, layers, d["layer_profile"][0, c], d["layer_profile_lo"][0, c],
                      d["layer_profile_hi"][0, c], color, f"step {format_step(store.step[c])}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer")
        ax.set_ylabel("layer importance (nats)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def fig_ffn_layers(stores):
    """Figure 3: FFN layer-importance snapshots."""
    return layer_figure(stores, "ffn")


def fig_attn_layers(stores):
    """Figure 4: ATTN layer-importance snapshots."""
    return layer_figure(stores, "attn")


def no_ablation(ax):
    """The panel of a store without ablation data: a note, no axes."""
    ax.text(0.5, 0.5, "no ablation data\n(no /analysis/ablation in this store)",
            ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def condition_lines(ax, store, name):
    """One line per masking condition of ablation dataset `name` (scope 0,
    [C, M-1]) with its bootstrap band."""
    a = store.ablation
    for m, condition in enumerate(a["condition"]):
        line, = ax.plot(store.step, a[name][0, :, m], marker="o", markersize=3,
                        label=condition_label(condition))
        ax.fill_between(store.step, a[name + "_lo"][0, :, m], a[name + "_hi"][0, :, m],
                        color=line.get_color(), alpha=0.15, linewidth=0)


def fig_ablation(stores):
    """Figure 5: per store, HIT@10 per step without masking and under each
    masking condition (scope 0) with bootstrap bands; a note for a store
    without ablation data."""
    fig, axes = store_figure(len(stores), "HIT@10 under ablation")
    for store, ax in zip(stores, axes):
        ax.set_title(store.label)
        if store.ablation is None:
            no_ablation(ax)
            continue
        a = store.ablation
        ax.plot(store.step, a["hit_before"][0], color="black", marker="o", markersize=3,
                label="no masking")
        ax.fill_between(store.step, a["hit_before_lo"][0], a["hit_before_hi"][0],
                        color="black", alpha=0.12, linewidth=0)
        condition_lines(ax, store, "hit_after")
        step_axis(ax, "HIT@10")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize="small")
    return fig


def fig_ablation_drop(stores):
    """Figure 5b: per store, the HIT@10 drop (%) per step under each masking
    condition (scope 0) with bootstrap bands; NaN where the unmasked HIT@10 is
    0 or below the analysis's ablation_min_hit."""
    fig, axes = store_figure(len(stores), "HIT@10 drop (%) under masking")
    for store, ax in zip(stores, axes):
        ax.set_title(store.label)
        if store.ablation is None:
            no_ablation(ax)
            continue
        condition_lines(ax, store, "drop_percent")
        ax.axhline(0, color="grey", linewidth=0.8)
        step_axis(ax, "drop of HIT@10 (%)")
        ax.legend(fontsize="small")
    return fig


DRAW = {
    "fig1_jaccard.png": fig_jaccard,
    "fig1b_gain_concentration.png": fig_gain_concentration,
    "fig2_mean_importance.png": fig_mean_importance,
    "fig3_ffn_layers.png": fig_ffn_layers,
    "fig4_attn_layers.png": fig_attn_layers,
    "fig5_ablation.png": fig_ablation,
    "fig5b_ablation_drop.png": fig_ablation_drop,
}


def main():
    parser = lpi_store.argument_parser(__doc__)
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args()
    stores = lpi_store.load_or_exit(args.stores)
    os.makedirs(args.out, exist_ok=True)
    for name, _ in lpi_store.FIGURES:
        fig = DRAW[name](stores)
        path = os.path.join(args.out, name)
        fig.savefig(path, dpi=args.dpi)
        width, height = fig.get_size_inches() * args.dpi
        plt.close(fig)
        print(f"{path}: {round(width)} x {round(height)} px")


if __name__ == "__main__":
    main()
