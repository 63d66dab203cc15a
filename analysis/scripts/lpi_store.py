"""The `analysis` group of lpi-sweep stores (docs/STORE.md, written by
lpi-analyze), read with h5py into plain numpy arrays for figures.py and
report.py, plus the formatting both share (steps, intervals, conditions).

    store = lpi_store.load("runs/sweep-tiny-olmoe.h5")
    store.family["ffn"]["jaccard"][0]        # J per consecutive pair, all prompts
    store.ablation["drop_percent_mean"][0]   # per condition (None: no ablation)
"""
import math
import sys
from dataclasses import dataclass, field

import h5py
import numpy as np

FAMILIES = ("ffn", "attn")
FAMILY_TITLE = {"ffn": "FFN", "attn": "ATTN"}

# The figures, in order: file name and caption (figures.py draws them,
# report.py links them).
FIGURES = [
    ("fig1_jaccard.png", "Figure 1: Top-1% FFN and ATTN neurons, Jaccard overlap "
                         "between consecutive checkpoints"),
    ("fig1b_gain_concentration.png", "Figure 1b: positive-gain concentration R_t "
                                     "of the top-1% neurons"),
    ("fig2_mean_importance.png", "Figure 2: mean FFN and ATTN importance over all "
                                 "layers per step"),
    ("fig3_ffn_layers.png", "Figure 3: FFN layer importance at snapshot steps"),
    ("fig4_attn_layers.png", "Figure 4: ATTN layer importance at snapshot steps"),
    ("fig5_ablation.png", "Figure 5: HIT@10 under ablation (top heads, top-1% FFN "
                          "neurons)"),
    ("fig5b_ablation_drop.png", "Figure 5b: HIT@10 drop (%) under each masking condition "
                                "per step"),
]

# Dataset shapes in /analysis/{ffn,attn}: S scopes, C analysed checkpoints,
# C-1 consecutive pairs, Q step ranges, L layers. Those in BANDED also have
# `_lo` and `_hi` (the bootstrap interval).
FAMILY_SHAPES = {
    "jaccard": ("S", "C-1"),
    "jaccard_random": ("C-1",),
    "gain_concentration": ("S", "C-1"),
    "gain_concentration_random": ("S", "C-1"),
    "layer_profile": ("S", "C", "L"),
    "layer_mean": ("S", "C"),
    "jaccard_mean": ("S", "Q"),
    "jaccard_mean_random": ("Q",),
    "gain_concentration_mean": ("S", "Q"),
    "gain_concentration_mean_random": ("S", "Q"),
    "rho_avg": ("S", "Q"),
    "sigma_rel": ("S", "Q"),
    "overlap_jaccard": ("S", "O"),
    "overlap_jaccard_random": ("O",),
    "overlap_survival": ("S", "O"),
    "overlap_survival_random": ("O",),
}
ABLATION_SHAPES = {
    "hit_before": ("S", "C"),
    "hit_after": ("S", "C", "M"),
    "drop_percent": ("S", "C", "M"),
    "drop_percent_mean": ("S", "M"),
}
BANDED = {"jaccard", "gain_concentration", "layer_profile", "layer_mean", "jaccard_mean",
          "gain_concentration_mean", "rho_avg", "sigma_rel", "hit_before", "hit_after",
          "drop_percent", "drop_percent_mean", "overlap_jaccard", "overlap_survival"}


class StoreError(Exception):
    """A store that cannot be read as documented; the message names the file
    and the object."""


class MissingAnalysis(StoreError):
    """A store without the /analysis group."""


@dataclass
class Store:
    """One store's description and its /analysis results (scope 0 = all
    prompts, scope s >= 1 = relation scope[s])."""
    path: str
    job_name: str
    model_name: str
    architecture: str
    num_layers: int
    num_experts: int
    experts_per_token: int
    checkpoints_total: int
    prompts_total: int
    relations: list
    options: dict                 # /analysis attributes
    checkpoint: np.ndarray        # [C] indices into /checkpoints
    step: np.ndarray              # [C]
    prompt_count: int             # P'
    scope: list                   # [S]: "all", then relation ids
    range_first: np.ndarray       # [Q]
    range_last: np.ndarray        # [Q], the whole trajectory last
    range_checkpoints: np.ndarray  # [Q]
    range_name: list              # [Q]: "" (a --range), "consolidation", "trajectory"
    consolidation: int            # the index of the consolidation range (Table 2's R_t)
    overlap_first: np.ndarray     # [O] steps whose top sets are compared
    overlap_second: np.ndarray    # [O]
    snapshot: np.ndarray          # [Z] positions into step
    family: dict = field(default_factory=dict)  # "ffn"/"attn" -> name -> array
    family_attrs: dict = field(default_factory=dict)  # "ffn"/"attn" -> neurons, top_count
    ablation: dict = None         # name -> array, "condition" -> [M-1]; None: absent

    @property
    def label(self):
        """Legend and table label: job (or model) name and architecture."""
        name = self.job_name or self.model_name or self.path
        return f"{name} ({self.architecture})" if self.architecture else name

    @property
    def ranges(self):
        """Number of step ranges Q."""
        return len(self.range_first)

    def range_text(self, q):
        return f"{format_step(self.range_first[q])}-{format_step(self.range_last[q])}"

    def triple(self, group, name, index):
        """(value, lo, hi) of a banded dataset at `index` (a tuple); group is
        "ffn", "attn" or "ablation"."""
        data = self.ablation if group == "ablation" else self.family[group]
        return tuple(float(data[name + suffix][index]) for suffix in ("", "_lo", "_hi"))


def text(value):
    """A string from an HDF5 string attribute or element (fixed-length strings
    come back as bytes)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace").rstrip("\0")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return str(value)


def texts(dataset):
    return [text(v) for v in dataset[...]]


def _attr(attrs, name, default=""):
    return text(attrs[name]) if name in attrs else default


def _int_attr(attrs, name, default=0):
    return int(attrs[name]) if name in attrs else default


def _length(f, path, default):
    return f[path].shape[0] if path in f else default


def _dataset(f, path, store_path):
    if path not in f:
        raise StoreError(f"{store_path}: /{path} is missing (see docs/STORE.md)")
    return f[path]


def _read(group, name, shape, dims, store_path):
    """Dataset `name` of `group` as float64, checked against `shape` (symbols
    of `dims`, "C-1" for the pairs)."""
    path = f"{group.name}/{name}"
    ds = _dataset(group.file, path.lstrip("/"), store_path)
    expected = tuple(dims["C"] - 1 if s == "C-1" else dims[s] for s in shape)
    if ds.shape != expected:
        raise StoreError(f"{store_path}: {path} has shape {ds.shape}, expected "
                         f"[{', '.join(shape)}] = {expected}")
    return ds[...].astype(np.float64)


def _read_group(group, shapes, dims, store_path):
    out = {}
    for name, shape in shapes.items():
        suffixes = ("", "_lo", "_hi") if name in BANDED else ("",)
        for suffix in suffixes:
            out[name + suffix] = _read(group, name + suffix, shape, dims, store_path)
    return out


def load(path):
    """Reads one store; raises MissingAnalysis when it has no /analysis group
    and StoreError when it cannot be read as documented."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"{path}: cannot open as HDF5 ({e})") from None
    with f:
        if "analysis" not in f:
            raise MissingAnalysis(f"{path}: no /analysis group; run lpi-analyze first")
        g = f["analysis"]
        a = f.attrs
        step = _dataset(f, "analysis/step", path)[...].astype(np.int64)
        scope = texts(_dataset(f, "analysis/scope", path))
        range_first = _dataset(f, "analysis/range_first", path)[...].astype(np.int64)
        overlap_first = _dataset(f, "analysis/overlap_first_step", path)[...].astype(np.int64)
        dims = {"S": len(scope), "C": len(step), "Q": len(range_first),
                "L": _int_attr(a, "num_layers"), "O": len(overlap_first)}
        if dims["L"] <= 0 and "ffn/layer_profile" in g:
            dims["L"] = g["ffn/layer_profile"].shape[-1]
        store = Store(
            path=path,
            job_name=_attr(a, "job_name"),
            model_name=_attr(a, "model_name"),
            architecture=_attr(a, "architecture"),
            num_layers=dims["L"],
            num_experts=_int_attr(a, "num_experts"),
            experts_per_token=_int_attr(a, "experts_per_token"),
            checkpoints_total=_length(f, "checkpoints/step", len(step)),
            prompts_total=_length(f, "prompts/relation", 0),
            relations=texts(f["relations/id"]) if "relations/id" in f else scope[1:],
            options={k: text(v) if isinstance(v, (bytes, str, np.bytes_)) else v
                     for k, v in g.attrs.items()},
            checkpoint=_dataset(f, "analysis/checkpoint", path)[...],
            step=step,
            prompt_count=_dataset(f, "analysis/prompt", path).shape[0],
            scope=scope,
            range_first=range_first,
            range_last=_dataset(f, "analysis/range_last", path)[...].astype(np.int64),
            range_checkpoints=_dataset(f, "analysis/range_checkpoints", path)[...],
            range_name=texts(_dataset(f, "analysis/range_name", path)),
            consolidation=_int_attr(g.attrs, "consolidation_range", len(range_first) - 1),
            overlap_first=overlap_first,
            overlap_second=_dataset(f, "analysis/overlap_second_step", path)[...].astype(np.int64),
            snapshot=_dataset(f, "analysis/snapshot", path)[...].astype(np.int64),
        )
        for fam in FAMILIES:
            group = _dataset(f, f"analysis/{fam}", path)
            store.family[fam] = _read_group(group, FAMILY_SHAPES, dims, path)
            store.family_attrs[fam] = {k: int(v) for k, v in group.attrs.items()
                                       if k in ("neurons", "top_count", "gain_top_count")}
        if "ablation" in g:
            conditions = texts(_dataset(f, "analysis/ablation/condition", path))
            dims["M"] = len(conditions)
            store.ablation = _read_group(g["ablation"], ABLATION_SHAPES, dims, path)
            store.ablation["condition"] = conditions
        bad = store.snapshot[(store.snapshot < 0) | (store.snapshot >= len(step))]
        if bad.size:
            raise StoreError(f"{path}: /analysis/snapshot has positions {bad.tolist()} "
                             f"outside 0..{len(step) - 1}")
    return store


def argument_parser(doc):
    """The scripts' command line: the module docstring as help, then the stores."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(doc.splitlines()[1:]))
    parser.add_argument("stores", nargs="+", metavar="STORE.h5")
    return parser


def load_or_exit(paths):
    """All stores, or a message on stderr and exit code 2 at the first that
    cannot be used."""
    stores = []
    for path in paths:
        try:
            stores.append(load(path))
        except StoreError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
    return stores


def format_step(step):
    """Training step the paper's way: 700, 70K, 1.2M."""
    step = int(step)
    if step >= 1_000_000:
        return f"{step / 1e6:g}M"
    if step >= 1_000:
        return f"{step / 1e3:g}K"
    return str(step)


def format_number(value, digits=1, scale=1.0):
    """`value * scale` with `digits` decimals; NaN as "n/a"."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * scale:.{digits}f}"


def format_interval(triple, digits=1, scale=1.0):
    """"value [lo, hi]" from (value, lo, hi); NaN parts as "n/a"."""
    value, lo, hi = triple
    if not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{format_number(value, digits, scale)} [n/a]"
    return (f"{format_number(value, digits, scale)} "
            f"[{format_number(lo, digits, scale)}, {format_number(hi, digits, scale)}]")


def condition_label(condition):
    """The paper's name of an ablation condition: heads:10 -> Top-10 heads,
    ffn:0.01 -> Top-1% FFN neurons."""
    kind, _, amount = condition.partition(":")
    if kind == "heads":
        return "Top-1 head" if amount == "1" else f"Top-{amount} heads"
    if kind == "ffn":
        try:
            return f"Top-{float(amount) * 100:g}% FFN neurons"
        except ValueError:
            pass
    return condition
