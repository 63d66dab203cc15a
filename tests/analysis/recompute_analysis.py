#!/usr/bin/env python3
"""Recompute a store's /analysis group with numpy and compare it to the stored one.

    /usr/bin/python3 tests/analysis/recompute_analysis.py STORE.h5 [--tol 1e-9]

An independent reference for `lpi-analyze`, written from docs/STORE.md
("Sweep store", "Ablation datasets", "The `analysis` group") only. It reads
the inputs the tool chose and stored (analysed checkpoints and prompts, the
bootstrap resamples, the random sets, the readings fraction, top_scope,
gain_scope, aggregate, expert_mean, gain_rank, gain_baseline and
layer_importance, the step ranges and overlap steps), recomputes every dataset of /analysis/{ffn,attn} and
/analysis/ablation from /importance and /ablation, and compares: floats
within --tol (absolute, relative for values above 1; NaN only matches NaN),
integers and strings exactly; the random sets are checked for shape and
distinct indices, the bootstrap for staying within relations. One line per
dataset; exit 0 when all agree, 1 on any mismatch, 2 when the store has no
/analysis group.

Layout of the computation: a "row" is one (scope, resample) pair, resample 0
being the analysed prompts themselves and 1..B the stored bootstrap
resamples. A row is a vector of counts over the analysed positions (a
multiset of prompts), so every scope mean is counts @ vectors / sum(counts),
in float64. Each statistic is a small function over a leading row axis.
"""
import argparse
import math
import sys
import warnings

import h5py
import numpy as np

CONFIDENCE = (0.025, 0.975)   # the _lo and _hi quantiles (not stored in the file)
ROW_BLOCK_BYTES = 1 << 29     # bound on one [rows, N] float64 score block


def text(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def attr_text(value):
    return text(value)[0]


# ----------------------------------------------------------------------------
# Inputs

class Inputs:
    """What the analysis reads: the stored choices of /analysis and the store's data."""

    def __init__(self, f):
        a = f["analysis"]
        self.fraction = float(a.attrs["fraction"])
        self.top_scope = attr_text(a.attrs["top_scope"])
        self.gain_scope = attr_text(a.attrs["gain_scope"])
        self.aggregate = attr_text(a.attrs["aggregate"])            # signed | absolute
        self.expert_mean = attr_text(a.attrs["expert_mean"])        # all | routed
        self.gain_rank = attr_text(a.attrs["gain_rank"])            # gain | score
        self.gain_baseline = attr_text(a.attrs["gain_baseline"])    # same | family
        self.layer_importance = attr_text(a.attrs["layer_importance"])  # signed | absolute
        self.consolidation = int(a.attrs["consolidation_range"])
        self.range_name = text(a["range_name"][...])
        self.overlap_first = a["overlap_first_step"][...].astype(np.int64)   # [O] analysed steps
        self.overlap_second = a["overlap_second_step"][...].astype(np.int64)
        self.checkpoint = a["checkpoint"][...].astype(np.int64)        # [C'] into /checkpoints
        self.prompt = a["prompt"][...].astype(np.int64)                # [P'] into /prompts
        self.bootstrap = a["bootstrap"][...].astype(np.int64)          # [B, P'] positions
        self.range_first = a["range_first"][...].astype(np.int64)      # [Q]
        self.range_last = a["range_last"][...].astype(np.int64)
        self.step = f["checkpoints/step"][...][self.checkpoint].astype(np.int64)
        self.relations = text(f["relations/id"][...])
        self.relation = f["prompts/relation"][...][self.prompt].astype(np.int64)  # per position
        root = f.attrs
        self.layers = int(root["num_layers"])
        self.experts = int(root["num_experts"])
        self.scopes = ["all"] + self.relations
        self.counts = scope_counts(self.relation, len(self.relations), self.bootstrap)
        for name, value, allowed in (("aggregate", self.aggregate, ("signed", "absolute")),
                                     ("expert_mean", self.expert_mean, ("all", "routed")),
                                     ("gain_rank", self.gain_rank, ("gain", "score")),
                                     ("gain_baseline", self.gain_baseline, ("same", "family")),
                                     ("layer_importance", self.layer_importance,
                                      ("signed", "absolute"))):
            if value not in allowed:
                raise SystemExit(f"unknown {name} {value!r}")

    def position(self, step):
        """The position of an analysed step (the overlap steps are analysed ones)."""
        where = np.flatnonzero(self.step == step)
        if where.size != 1:
            raise SystemExit(f"overlap step {step} is not one analysed checkpoint")
        return int(where[0])


def scope_counts(relation, num_relations, bootstrap):
    """counts[s, b, j]: how often position j is in scope s of resample b.

    Scope 0 is every position, scope 1+r the positions of relation r.
    Resample 0 is the analysed prompts; resample 1+b replaces position j by
    bootstrap[b, j] (so a scope keeps its positions, each replaced).
    """
    P = relation.size
    B = bootstrap.shape[0]
    members = [np.arange(P)] + [np.flatnonzero(relation == r) for r in range(num_relations)]
    counts = np.zeros((len(members), 1 + B, P))
    for s, positions in enumerate(members):
        counts[s, 0, positions] = 1
        for b in range(B):
            counts[s, 1 + b] = np.bincount(bootstrap[b, positions], minlength=P)
    return counts


def family_vectors(f, family, inputs, c):
    """Per-prompt vectors [P', N] of one family at analysed checkpoint c (float64),
    and for routed expert means the routing [P', L*E] (1 where the prompt chose
    the expert; None otherwise).

    attn: importance/attn[c, p] flattened layer-major (N = L*H*dh).
    ffn dense: importance/ffn[c, p] (N = L*I).
    ffn MoE: the k chosen experts' rows placed at (l*E + e)*I + i, zeros elsewhere (N = L*E*I).
    aggregate = absolute: |value| (before any mean).
    """
    ck = int(inputs.checkpoint[c])
    data = f["importance"][family][ck][...]          # [P, L, X] or [P, L, k, I]
    data = data[inputs.prompt].astype(np.float64)
    if inputs.aggregate == "absolute":
        data = np.abs(data)
    P = data.shape[0]
    routed = None
    if family == "ffn" and inputs.experts > 0:
        ids = f["importance/expert_ids"][ck][...][inputs.prompt]   # [P', L, k]
        full = np.zeros((P, inputs.layers, inputs.experts, data.shape[-1]))
        p_idx, l_idx, slot = np.indices(ids.shape)
        full[p_idx, l_idx, ids] = data[p_idx, l_idx, slot]
        data = full
        if inputs.expert_mean == "routed":
            routed = np.zeros((P, inputs.layers, inputs.experts))
            routed[p_idx, l_idx, ids] = 1.0
            routed = routed.reshape(P, -1)
    return data.reshape(P, -1), routed


# ----------------------------------------------------------------------------
# Per-checkpoint and per-pair statistics; every function takes a leading row axis

def scope_scores(vectors, counts, routed=None):
    """S(c) per row: mean of the per-prompt vectors over the row's multiset, float64.
    Rows with an empty scope are NaN. With `routed` [P', G] (expert_mean =
    routed) each group of N/G neurons (an expert of a layer) is divided by the
    count of the row's prompts routed to it instead, 0 where none was."""
    if routed is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (counts @ vectors) / counts.sum(axis=1)[:, None]
    rows, G = counts.shape[0], routed.shape[1]
    total = (counts @ vectors).reshape(rows, G, -1)
    n = (counts @ routed)[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(n > 0, total / np.where(n > 0, n, 1.0), 0.0).reshape(rows, -1)
    scores[counts.sum(axis=1) == 0] = np.nan
    return scores


def top_count(fraction, n):
    """max(1, floor(f * n))."""
    return max(1, int(math.floor(fraction * n)))


def top_mask(values, k):
    """Boolean mask of the k largest values along the last axis, ties to the lower index."""
    order = np.argsort(-values, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return mask


def top_set(scores, fraction, layers, top_scope):
    """T(x) as a mask [rows, N]: the top |x| over the family, or the union of each layer's."""
    rows, N = scores.shape
    magnitude = np.abs(scores)
    if top_scope == "layer":
        per_layer = magnitude.reshape(rows, layers, N // layers)
        return top_mask(per_layer, top_count(fraction, N // layers)).reshape(rows, N)
    if top_scope == "family":
        return top_mask(magnitude, top_count(fraction, N))
    raise SystemExit(f"unknown top_scope {top_scope!r}")


def top_set_size(N, fraction, layers, top_scope):
    if top_scope == "layer":
        return layers * top_count(fraction, N // layers)
    return top_count(fraction, N)


def jaccard(mask_a, mask_b):
    """|A ∩ B| / |A ∪ B| per row."""
    inter = np.logical_and(mask_a, mask_b).sum(axis=1)
    union = np.logical_or(mask_a, mask_b).sum(axis=1)
    return inter / union


def positive_gain(scores_a, scores_b):
    """max(0, |S_{q+1}| - |S_q|) per neuron."""
    return np.maximum(0.0, np.abs(scores_b) - np.abs(scores_a))


def share(part, total):
    """part / total, NaN where total is 0 (no gain)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, part / np.where(total > 0, total, 1.0), np.nan)


def share_held(gain, held_mask, layers, gain_scope):
    """The share of the gain held by the masked neurons, per row: per layer of
    the layer's gain and then the mean over the layers with any (layer), or
    of the whole family's (family). NaN when there is no gain."""
    rows, N = gain.shape
    if gain_scope == "layer":
        per_layer = gain.reshape(rows, layers, N // layers)
        held = (per_layer * held_mask.reshape(rows, layers, N // layers)).sum(axis=2)
        return nanmean(share(held, per_layer.sum(axis=2)), axis=1)
    if gain_scope == "family":
        return share((gain * held_mask).sum(axis=1), gain.sum(axis=1))
    raise SystemExit(f"unknown gain_scope {gain_scope!r}")


def gain_concentration(scores_a, scores_b, fraction, layers, gain_scope, gain_rank):
    """R_t per row: the share of the gain held by R_t's top set, at gain_scope:
    per layer its top max(1, floor(f*N/L)) neurons, or the family's top
    max(1, floor(f*N)), ranked by the gain (gain_rank = gain) or by |S_b|
    (score); ties to the lower index."""
    gain = positive_gain(scores_a, scores_b)
    rank = gain if gain_rank == "gain" else np.abs(scores_b)
    rows, N = gain.shape
    if gain_scope == "layer":
        top = top_mask(rank.reshape(rows, layers, N // layers),
                       top_count(fraction, N // layers)).reshape(rows, N)
    else:
        top = top_mask(rank, top_count(fraction, N))
    return share_held(gain, top, layers, gain_scope)


def gain_concentration_random(scores_a, scores_b, inputs, random_set, gain_random_set):
    """R_t's random baseline per row: with gain_baseline = same, the share held
    by the stored gain_random_set at R_t's scope; with family, the share of the
    whole family's gain held by the Jaccard's random set."""
    gain = positive_gain(scores_a, scores_b)
    if inputs.gain_baseline == "family":
        return share(gain[:, random_set].sum(axis=1), gain.sum(axis=1))
    mask = np.zeros(gain.shape, dtype=bool)
    mask[:, gain_random_set] = True
    return share_held(gain, mask, inputs.layers, inputs.gain_scope)


def jaccard_of_sets(a, b):
    a, b = set(int(i) for i in a), set(int(i) for i in b)
    return len(a & b) / len(a | b)


def layer_profile(scores, layers, layer_importance="signed"):
    """I(c, l): the sum of S_c (signed) or of |S_c| (absolute) over layer l's neurons, [rows, L]."""
    rows, N = scores.shape
    if layer_importance == "absolute":
        scores = np.abs(scores)
    return scores.reshape(rows, layers, N // layers).sum(axis=2)


def nanmean(values, axis):
    """Mean skipping NaN; NaN when every entry is NaN (without numpy's warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(values, axis=axis)


# ----------------------------------------------------------------------------
# Step ranges

def checkpoints_in_range(step, first, last):
    return (step >= first) & (step <= last)


def pairs_in_range(step, first, last):
    """Pair q (checkpoints q, q+1) is in the range when both steps are."""
    inside = checkpoints_in_range(step, first, last)
    return inside[:-1] & inside[1:]


def range_mean(per_pair, pairs):
    """Mean over the range's pairs of a [..., C'-1] statistic, NaN entries skipped."""
    return nanmean(per_pair[..., pairs], axis=-1)


def pearson(x, y):
    """Pearson correlation along the last axis."""
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=-1) / np.sqrt((dx * dx).sum(axis=-1) * (dy * dy).sum(axis=-1))


def is_constant(profile):
    return profile.max(axis=-1) == profile.min(axis=-1)


def rho_avg(profiles):
    """Mean Pearson correlation over all pairs i < j of the profiles [..., n, L];
    a pair with a constant profile is skipped."""
    n = profiles.shape[-2]
    correlations = []
    for i in range(n):
        for j in range(i + 1, n):
            x, y = profiles[..., i, :], profiles[..., j, :]
            r = pearson(x, y)
            correlations.append(np.where(is_constant(x) | is_constant(y), np.nan, r))
    return nanmean(np.stack(correlations, axis=-1), axis=-1)


def sigma_rel(profiles):
    """Mean over layers of std/|mean| across the profiles [..., n, L] (population
    std); layers whose mean is 0 are skipped."""
    mu = profiles.mean(axis=-2)
    sd = np.sqrt(((profiles - mu[..., None, :]) ** 2).mean(axis=-2))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(mu != 0, sd / np.abs(mu), np.nan)
    return nanmean(ratio, axis=-1)


def range_statistics(step, first, last, jaccard_q, gain_q, profiles, extra_pairs=()):
    """Per range: jaccard_mean, gain_concentration_mean, rho_avg, sigma_rel over
    [..., Q]; NaN for a range with fewer than two checkpoints. jaccard_q and
    gain_q are [..., C'-1], profiles [..., C', L]; extra_pairs are further
    [..., C'-1] statistics to average like the Jaccard (the random baselines)."""
    lead = profiles.shape[:-2]
    Q = len(first)
    out = {name: np.full(lead + (Q,), np.nan)
           for name in ("jaccard_mean", "gain_concentration_mean", "rho_avg", "sigma_rel")}
    extra = [np.full(x.shape[:-1] + (Q,), np.nan) for x in extra_pairs]
    for q in range(Q):
        inside = checkpoints_in_range(step, first[q], last[q])
        if inside.sum() < 2:
            continue
        pairs = pairs_in_range(step, first[q], last[q])
        out["jaccard_mean"][..., q] = range_mean(jaccard_q, pairs)
        out["gain_concentration_mean"][..., q] = range_mean(gain_q, pairs)
        out["rho_avg"][..., q] = rho_avg(profiles[..., inside, :])
        out["sigma_rel"][..., q] = sigma_rel(profiles[..., inside, :])
        for x, target in zip(extra_pairs, extra):
            target[..., q] = range_mean(x, pairs)
    return out, extra


# ----------------------------------------------------------------------------
# Bootstrap intervals

def interval(resampled):
    """The CONFIDENCE quantiles over axis 0 of the finite resample values
    (linear interpolation, as numpy.quantile); NaN where none is finite."""
    if resampled.shape[0] == 0:
        nan = np.full(resampled.shape[1:], np.nan)
        return nan, nan.copy()
    finite = np.where(np.isfinite(resampled), resampled, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        lo = np.nanquantile(finite, CONFIDENCE[0], axis=0)
        hi = np.nanquantile(finite, CONFIDENCE[1], axis=0)
    return lo, hi


def with_interval(results, name, per_row):
    """Store per_row [S, 1+B, ...] as name (resample 0) and name_lo/_hi (1..B)."""
    results[name] = per_row[:, 0]
    results[name + "_lo"], results[name + "_hi"] = interval(np.moveaxis(per_row[:, 1:], 1, 0))


# ----------------------------------------------------------------------------
# A family's whole analysis

def trajectory(f, family, inputs, random_set, gain_random_set):
    """Per row: jaccard and gain concentrations [rows, C'-1], layer profiles
    [rows, C', L], and the overlap Jaccard and survival [rows, O]."""
    S, R1, P = inputs.counts.shape
    counts = inputs.counts.reshape(S * R1, P)
    rows = counts.shape[0]
    C, L = len(inputs.checkpoint), inputs.layers
    data = [family_vectors(f, family, inputs, c) for c in range(C)]
    N = data[0][0].shape[1]
    jac = np.full((rows, C - 1), np.nan)
    gain = np.full((rows, C - 1), np.nan)
    gain_random = np.full((rows, C - 1), np.nan)
    profile = np.full((rows, C, L), np.nan)
    pairs = [(inputs.position(a), inputs.position(b))
             for a, b in zip(inputs.overlap_first, inputs.overlap_second)]
    kept = {c for pair in pairs for c in pair}
    overlap_j = np.full((rows, len(pairs)), np.nan)
    overlap_s = np.full((rows, len(pairs)), np.nan)
    block = max(1, ROW_BLOCK_BYTES // (8 * N))
    for start in range(0, rows, block):
        part = slice(start, min(rows, start + block))
        previous = previous_top = None
        tops = {}
        for c in range(C):
            vectors, routed = data[c]
            scores = scope_scores(vectors, counts[part], routed)
            top = top_set(scores, inputs.fraction, L, inputs.top_scope)
            profile[part, c] = layer_profile(scores, L, inputs.layer_importance)
            if c > 0:
                jac[part, c - 1] = jaccard(previous_top, top)
                gain[part, c - 1] = gain_concentration(previous, scores, inputs.fraction, L,
                                                       inputs.gain_scope, inputs.gain_rank)
                gain_random[part, c - 1] = gain_concentration_random(
                    previous, scores, inputs, random_set[c], gain_random_set[c])
            if c in kept:
                tops[c] = top
            previous, previous_top = scores, top
        for o, (a, b) in enumerate(pairs):
            overlap_j[part, o] = jaccard(tops[a], tops[b])
            overlap_s[part, o] = (np.logical_and(tops[a], tops[b]).sum(axis=1)
                                  / tops[a].sum(axis=1))
    empty = counts.sum(axis=1) == 0          # a scope with no prompts: NaN statistics
    for x in (jac, gain, gain_random, profile, overlap_j, overlap_s):
        x[empty] = np.nan
    shape = (S, R1)
    return (jac.reshape(shape + (C - 1,)), gain.reshape(shape + (C - 1,)),
            gain_random.reshape(shape + (C - 1,)), profile.reshape(shape + (C, L)),
            overlap_j.reshape(shape + (len(pairs),)), overlap_s.reshape(shape + (len(pairs),)),
            pairs, N)


def family_results(f, family, inputs, stored_random_set, stored_gain_random_set):
    random_set = stored_random_set.astype(np.int64)
    gain_random_set = stored_gain_random_set.astype(np.int64)
    jac, gain, gain_random, profile, overlap_j, overlap_s, pairs, N = trajectory(
        f, family, inputs, random_set, gain_random_set)
    C = len(inputs.checkpoint)
    results = {}
    with_interval(results, "jaccard", jac)
    with_interval(results, "gain_concentration", gain)
    results["gain_concentration_random"] = gain_random[:, 0]
    results["jaccard_random"] = np.array(
        [jaccard_of_sets(random_set[q], random_set[q + 1]) for q in range(C - 1)])
    with_interval(results, "layer_profile", profile)
    with_interval(results, "layer_mean", profile.mean(axis=-1))
    ranges, (jac_random_mean, gain_random_mean) = range_statistics(
        inputs.step, inputs.range_first, inputs.range_last, jac, gain, profile,
        extra_pairs=(results["jaccard_random"], gain_random[:, 0]))
    for name, per_row in ranges.items():
        with_interval(results, name, per_row)
    results["jaccard_mean_random"] = jac_random_mean
    results["gain_concentration_mean_random"] = gain_random_mean
    with_interval(results, "overlap_jaccard", overlap_j)
    with_interval(results, "overlap_survival", overlap_s)
    results["overlap_jaccard_random"] = np.array(
        [jaccard_of_sets(random_set[a], random_set[b]) for a, b in pairs])
    results["overlap_survival_random"] = np.array(
        [len(set(random_set[a].tolist()) & set(random_set[b].tolist())) / random_set[a].size
         for a, b in pairs])
    return results, N


def gain_random_set_problems(gain_random_set, N, inputs):
    """R_t's random sets: C' rows of distinct indices, max(1, floor(f*N/L)) in
    every layer (gain_scope layer) or max(1, floor(f*N)) over the family."""
    layer = inputs.gain_scope == "layer"
    per = top_count(inputs.fraction, N // inputs.layers if layer else N)
    K = per * (inputs.layers if layer else 1)
    problems = []
    if gain_random_set.shape != (len(inputs.checkpoint), K):
        return [f"shape {list(gain_random_set.shape)}, expected [{len(inputs.checkpoint)}, {K}]"]
    for c, row in enumerate(gain_random_set):
        if row.min() < 0 or row.max() >= N or len(set(row.tolist())) != row.size:
            problems.append(f"row {c}: an index outside [0, {N}) or repeated")
        elif layer and (np.bincount(row // (N // inputs.layers), minlength=inputs.layers)
                        != per).any():
            problems.append(f"row {c}: not {per} indices in every layer")
    return problems


def random_set_problems(random_set, N, inputs):
    """The stored random sets must be C' rows of K = |T| distinct indices into N."""
    K = top_set_size(N, inputs.fraction, inputs.layers, inputs.top_scope)
    problems = []
    if random_set.shape != (len(inputs.checkpoint), K):
        problems.append(f"shape {list(random_set.shape)}, expected [{len(inputs.checkpoint)}, {K}]")
    for c, row in enumerate(random_set):
        if row.min() < 0 or row.max() >= N:
            problems.append(f"row {c}: index outside [0, {N})")
        if len(set(row.tolist())) != row.size:
            problems.append(f"row {c}: repeated index")
    return problems


# ----------------------------------------------------------------------------
# Ablation

def ablation_results(f, inputs):
    """hit_before/hit_after/drop_percent per scope and checkpoint, and the mean
    drop over checkpoints with its bootstrap interval."""
    conditions = text(f["ablation/condition"][...])
    none = conditions.index("none")
    masked = text(f["analysis/ablation/condition"][...])
    columns = [conditions.index(name) for name in masked]
    hit = f["ablation/hit_at_10"][...][inputs.checkpoint][:, inputs.prompt].astype(np.float64)
    S, R1, P = inputs.counts.shape
    counts = inputs.counts.reshape(S * R1, P)
    C = len(inputs.checkpoint)
    before = np.stack([scope_scores(hit[c][:, [none]], counts)[:, 0] for c in range(C)], axis=1)
    after = np.stack([scope_scores(hit[c][:, columns], counts) for c in range(C)], axis=1)
    # A drop needs a model that knows something: before > 0 and >= the
    # store's ablation_min_hit (0 when the attribute is absent).
    min_hit = float(f["analysis"].attrs.get("ablation_min_hit", 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        drop = np.where((before[..., None] == 0) | (before[..., None] < min_hit), np.nan,
                        100.0 * (before[..., None] - after) / before[..., None])
    before = before.reshape(S, R1, C)
    after = after.reshape(S, R1, C, len(columns))
    drop = drop.reshape(S, R1, C, len(columns))
    results = {"condition": np.array(masked, dtype=object)}
    with_interval(results, "hit_before", before)
    with_interval(results, "hit_after", after)
    with_interval(results, "drop_percent", drop)
    with_interval(results, "drop_percent_mean", nanmean(drop, axis=2))
    return results


# ----------------------------------------------------------------------------
# Comparison

class Report:
    def __init__(self, tol):
        self.tol = tol
        self.compared = 0
        self.failed = []

    def fail(self, name, message):
        self.compared += 1
        self.failed.append(name)
        print(f"MISMATCH {name}: {message}")

    def ok(self, name, message):
        self.compared += 1
        print(f"ok {name} {message}")

    def compare(self, name, stored, expected):
        stored = np.asarray(stored)
        expected = np.asarray(expected)
        if stored.shape != expected.shape:
            return self.fail(name, f"shape {list(stored.shape)}, expected {list(expected.shape)}")
        if expected.dtype == object or stored.dtype.kind in "SOU":
            s, e = text(stored.ravel()), text(expected.ravel())
            if s != e:
                return self.fail(name, f"stored {s}, expected {e}")
            return self.ok(name, f"{list(stored.shape)} equal")
        if stored.dtype.kind in "iub" and expected.dtype.kind in "iub":
            bad = stored != expected
            diff = np.abs(stored.astype(np.int64) - expected.astype(np.int64))
        else:
            s, e = stored.astype(np.float64), expected.astype(np.float64)
            both_nan = np.isnan(s) & np.isnan(e)
            with np.errstate(invalid="ignore"):
                diff = np.where(both_nan, 0.0, np.abs(s - e))
            # |a - b| <= tol, relative to the value above 1 (sigma_rel divides by a
            # layer mean that can be near 0, layer profiles are unbounded sums)
            bound = self.tol * np.maximum(1.0, np.nan_to_num(np.abs(e)))
            bad = ~(diff <= bound)           # NaN against a number is bad
        worst = np.nanmax(np.where(bad, np.nan, diff)) if (~bad).any() else 0.0
        if bad.any():
            where = np.argwhere(bad)
            shown = "; ".join(f"{list(map(int, i))}: stored {stored[tuple(i)]!r} "
                              f"recomputed {expected[tuple(i)]!r}" for i in where[:5])
            how = "differ" if stored.dtype.kind in "iub" else f"differ beyond {self.tol:g}"
            return self.fail(name, f"{list(stored.shape)} {int(bad.sum())} of {bad.size} "
                                   f"entries {how}: {shown}")
        self.ok(name, f"{list(stored.shape)} max|diff| {worst:.1e}")

    def compare_group(self, f, group, expected, checked_apart=()):
        """Compare each expected dataset of /analysis/group (None: /analysis itself)."""
        for name, value in expected.items():
            path = f"{group}/{name}" if group else name
            if path not in f["analysis"]:
                self.fail(path, "missing from the store")
                continue
            self.compare(path, f["analysis"][path][...], value)
        if group is None:
            return
        for name in f["analysis"][group]:
            if name not in expected and name not in checked_apart:
                print(f"unchecked {group}/{name} (not in the specification)")


def check_inputs(f, inputs, report):
    report.compare_group(f, None, {
        "step": inputs.step,
        "scope": np.array(inputs.scopes, dtype=object),
        "range_checkpoints": np.array([checkpoints_in_range(inputs.step, lo, hi).sum()
                                       for lo, hi in zip(inputs.range_first, inputs.range_last)]),
    })
    Q = len(inputs.range_first)
    expected_names = [""] * Q
    if Q >= 2:
        expected_names[inputs.consolidation] = "consolidation"
        expected_names[-1] = "trajectory"
    report.compare_group(f, None, {"range_name": np.array(expected_names, dtype=object)})
    if not (0 <= inputs.consolidation < Q - 1) or (
            inputs.range_first[-1], inputs.range_last[-1]) != (inputs.step[0], inputs.step[-1]):
        report.fail("range_first", "the last range is not the whole trajectory, or the "
                    "consolidation range is out of place")
    B, P = inputs.bootstrap.shape
    problems = []
    if P != inputs.prompt.size:
        problems.append(f"bootstrap has {P} columns for {inputs.prompt.size} prompts")
    elif B and (inputs.bootstrap.min() < 0 or inputs.bootstrap.max() >= P):
        problems.append("bootstrap position outside the analysed prompts")
    elif B and (inputs.relation[inputs.bootstrap] != inputs.relation[None, :]).any():
        b, j = np.argwhere(inputs.relation[inputs.bootstrap] != inputs.relation[None, :])[0]
        problems.append(f"bootstrap[{b}, {j}] = {inputs.bootstrap[b, j]} crosses relations")
    if np.any(np.diff(inputs.prompt) <= 0):
        problems.append("/analysis/prompt is not ascending")
    if np.any(np.diff(inputs.step) < 0):
        problems.append("/analysis/step is not ascending")
    if problems:
        report.fail("bootstrap", "; ".join(problems))
    else:
        report.ok("bootstrap", f"[{B}, {P}] stratified by relation")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args()
    report = Report(args.tol)
    with h5py.File(args.store, "r") as f:
        if "analysis" not in f:
            print(f"{args.store}: no /analysis group")
            return 2
        inputs = Inputs(f)
        B = inputs.bootstrap.shape[0]
        print(f"{args.store}: {len(inputs.checkpoint)} checkpoints, {inputs.prompt.size} prompts, "
              f"{len(inputs.scopes)} scopes, {B} resamples, fraction {inputs.fraction}, "
              f"top_scope {inputs.top_scope}, gain_scope {inputs.gain_scope}, "
              f"aggregate {inputs.aggregate}, expert_mean {inputs.expert_mean}, "
              f"gain_rank {inputs.gain_rank}, gain_baseline {inputs.gain_baseline}, "
              f"layer_importance {inputs.layer_importance}, "
              f"{len(inputs.overlap_first)} overlaps, "
              f"{len(inputs.range_first)} ranges")
        confidence = f["analysis"].attrs.get("confidence")
        if confidence is not None and not np.isclose(float(confidence), 0.95):
            print(f"note: /analysis has confidence {confidence}; this check uses the "
                  f"{CONFIDENCE} quantiles that docs/STORE.md fixes")
        check_inputs(f, inputs, report)
        for family in ("ffn", "attn"):
            if family not in f["analysis"]:
                if family in f["importance"]:
                    report.fail(family, "/importance has it but /analysis does not")
                continue
            stored_random = f["analysis"][family]["random_set"][...]
            stored_gain_random = f["analysis"][family]["gain_random_set"][...]
            expected, N = family_results(f, family, inputs, stored_random, stored_gain_random)
            for name, problems in (
                    ("random_set", random_set_problems(stored_random, N, inputs)),
                    ("gain_random_set",
                     gain_random_set_problems(stored_gain_random, N, inputs))):
                if problems:
                    report.fail(f"{family}/{name}", "; ".join(problems))
                else:
                    report.ok(f"{family}/{name}", f"valid (N = {N})")
            report.compare_group(f, family, expected,
                                 checked_apart=("random_set", "gain_random_set"))
        if "ablation" in f["analysis"]:
            report.compare_group(f, "ablation", ablation_results(f, inputs))
        elif "ablation" in f and "hit_at_10" in f["ablation"]:
            report.fail("ablation", "the store has ablation data but /analysis/ablation is missing")
    print(f"{args.store}: {report.compared} datasets compared, {len(report.failed)} mismatches"
          + (f" ({', '.join(report.failed)})" if report.failed else ""))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
