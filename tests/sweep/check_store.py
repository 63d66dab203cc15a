#!/usr/bin/python3
"""Checks on sweep stores for the sweep tests (h5py; run with /usr/bin/python3).

  check_store.py complete STORE                 every unit done, every checkpoint aggregated
  check_store.py equal STORE_A STORE_B          results bit for bit equal
  check_store.py attribute STORE CKPT ATTR.h5   checkpoint CKPT (name) equals lpi-attribute's file
  check_store.py aggregates STORE               means and HIT@10 recomputed from the per-prompt data
  check_store.py equal_done REF STORE           every checkpoint STORE completed equals REF's
  check_store.py snapshot STORE OUT.npz         remember which units are done, by whom, how long
  check_store.py unchanged OUT.npz STORE        those units are still done and were not redone
  check_store.py lean REF STORE                 STORE keeps no per-prompt tensors, the rest equals REF
  check_store.py close A B TOL                  A and B (a CPU and a GPU sweep) agree: floats within
                                                TOL where the chosen experts agree, at most 1% of the
                                                integers (experts, ranks) differ (near-ties)
  check_store.py half REF STORE DTYPE           STORE's per-prompt tensors are 16-bit DTYPE (float16,
                                                bfloat16) within half an ulp of REF's float32; the
                                                rest equals REF bit for bit
  check_store.py wait_units STORE N SECONDS     wait until N units are done (exit 1 on timeout)
  check_store.py wait_ablation STORE N SECONDS  the same for the ablation phase's units
  check_store.py digest STORE                   a hash of every dataset and attribute outside /analysis
  check_store.py cut A B                        two unit cuts of one job: the same results per prompt
                                                and checkpoint (means within the units' summation order)
  check_store.py identical A B                  every object, attribute, dtype, shape, chunking and
                                                value equal, but for the run history and the units'
                                                seconds and ranks (what differs from run to run)
  check_store.py ablation STORE                 masks re-ranked from the aggregates, HIT@10 per
                                                condition recomputed, the masks change the model
Exit status 0 when the check holds; the reason is printed otherwise.
"""
import sys

import h5py
import numpy as np

RESULTS = ["importance/target", "importance/base_logprob", "importance/attn", "importance/ffn",
           "importance/expert_ids", "evaluation/gold_rank", "evaluation/hit_at_10",
           "aggregates/attn_mean", "aggregates/ffn_mean", "aggregates/hit_at_10",
           "aggregates/hit_at_10_all", "aggregates/unit_attn_sum", "aggregates/unit_ffn_sum",
           "ablation/heads", "ablation/head_score", "ablation/ffn_neurons", "ablation/gold_rank",
           "ablation/target_logprob", "ablation/hit_at_10", "ablation/hit_at_10_all",
           "ablation/hit_at_10_by_relation"]


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def complete(path):
    with h5py.File(path, "r") as f:
        done, agg = f["units/done"][...], f["aggregates/done"][...]
        if not done.all():
            fail(f"{path}: units not done: {np.flatnonzero(done == 0).tolist()}")
        if not agg.all():
            fail(f"{path}: checkpoints not aggregated: {np.flatnonzero(agg == 0).tolist()}")
        if "ablation" in f:
            for name in ["ablation/mask_done", "ablation/unit_done", "ablation/done"]:
                if not f[name][...].all():
                    fail(f"{path}: {name} not all set: {np.flatnonzero(f[name][...] == 0).tolist()}")
        print(f"{path}: {done.size} units done, {agg.size} checkpoints aggregated"
              + (", ablation done" if "ablation" in f else ""))


def ranked(score, keep):
    """Indices of the `keep` largest scores, best first, ties to the lower index."""
    return np.argsort(-score, kind="stable")[:keep]


def ablation(path):
    with h5py.File(path, "r") as f:
        conditions = [c.decode() for c in f["ablation/condition"][...]]
        if conditions[0] != "none":
            fail(f"first condition is {conditions[0]}")
        H, dh = int(f.attrs["num_heads"]), int(f.attrs["head_dim"])
        C = f["checkpoints/name"].shape[0]
        rel = f["prompts/relation"][...]
        R = f["relations/id"].shape[0]
        agree = total = changed = 0
        for c in range(C):
            attn = f["aggregates/attn_mean"][c].astype(np.float64)  # [L, H*dh]
            score = np.abs(attn).reshape(attn.shape[0], H, dh).sum(-1).ravel()
            heads = f["ablation/heads"][c]
            want = ranked(score, heads.shape[0])
            got = heads[:, 0] * H + heads[:, 1]
            if not np.array_equal(got[got >= 0], want[: (got >= 0).sum()]):
                fail(f"checkpoint {c}: heads {got.tolist()}, re-ranked {want.tolist()}")
            if not np.allclose(f["ablation/head_score"][c][: len(want)], score[want], rtol=1e-6):
                fail(f"checkpoint {c}: head scores")
            ffn = np.abs(f["aggregates/ffn_mean"][c].astype(np.float64)).ravel()
            neurons = f["ablation/ffn_neurons"][c]
            if not np.array_equal(neurons, ranked(ffn, neurons.size)):
                fail(f"checkpoint {c}: FFN neurons differ from the re-ranked top {neurons.size}")
            rank = f["ablation/gold_rank"][c]  # [P, M]
            hit = rank < 10
            if (rank < 0).any():
                fail(f"checkpoint {c}: a prompt without an ablation result")
            if not np.array_equal(hit, f["ablation/hit_at_10"][c].astype(bool)):
                fail(f"checkpoint {c}: ablation hit_at_10 is not gold_rank < 10")
            if not np.allclose(hit.mean(0), f["ablation/hit_at_10_all"][c]):
                fail(f"checkpoint {c}: hit_at_10_all per condition")
            by = np.array([hit[rel == r].mean(0) for r in range(R)])
            if not np.allclose(by, f["ablation/hit_at_10_by_relation"][c]):
                fail(f"checkpoint {c}: hit_at_10_by_relation")
            # Condition "none" goes through the batched evaluation; the
            # attribution's rank through batch-1 forwards: the same model.
            agree += int((hit[:, 0] == f["evaluation/hit_at_10"][c].astype(bool)).sum())
            total += hit.shape[0]
            logprob = f["ablation/target_logprob"][c]
            changed += int((logprob[:, 1:] != logprob[:, :1]).any(0).sum())
        if agree < total:
            fail(f"unmasked HIT@10 of the ablation phase differs from the attribution's on "
                 f"{total - agree} of {total} prompts")
        if changed < (len(conditions) - 1) * C:
            fail(f"a masking condition left every log-probability of a checkpoint unchanged "
                 f"({changed} of {(len(conditions) - 1) * C} condition-checkpoints changed)")
        print(f"{path}: ablation masks, HIT@10 per condition and the unmasked model agree "
              f"({len(conditions) - 1} conditions x {C} checkpoints; {total} prompts)")


def equal(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        compared = 0
        for name in RESULTS:
            if (name in fa) != (name in fb):
                fail(f"{name} is in one store only")
            if name not in fa:
                continue
            x, y = fa[name][...], fb[name][...]
            if x.shape != y.shape or x.tobytes() != y.tobytes():
                diff = np.argwhere(x != y) if x.shape == y.shape else "shapes differ"
                fail(f"{name} differs between {a} and {b}: first at {diff[:3] if len(diff) else diff}")
            compared += x.size
        print(f"{a} == {b}: {compared} values bit for bit")


def attribute(store, checkpoint, attr):
    with h5py.File(store, "r") as f, h5py.File(attr, "r") as g:
        names = [s.decode() for s in f["checkpoints/name"][...]]
        c = names.index(checkpoint)
        key = lambda h, p: (h["relations/id"][h["prompts/relation"][p]].decode(), int(h["prompts/sample"][p]))
        where = {key(f, p): p for p in range(f["prompts/relation"].shape[0])}
        rows = [where[key(g, p)] for p in range(g["prompts/relation"].shape[0])]
        compared = 0
        for name in ["importance/target", "importance/base_logprob", "importance/attn",
                     "importance/ffn", "importance/expert_ids"]:
            if name not in g:
                continue
            x = f[name][c][rows]
            y = g[name][...]
            if x.tobytes() != y.tobytes():
                fail(f"{name} of {checkpoint} differs from {attr}: max |diff| "
                     f"{np.abs(x.astype(np.float64) - y).max()}")
            compared += y.size
        print(f"{store} [{checkpoint}] == {attr}: {compared} values bit for bit ({len(rows)} prompts)")


def aggregates(store):
    with h5py.File(store, "r") as f:
        E = int(f.attrs["num_experts"])
        rel = f["prompts/relation"][...]
        for c in range(f["checkpoints/name"].shape[0]):
            attn = f["importance/attn"][c].astype(np.float64)
            if not np.allclose(attn.mean(0), f["aggregates/attn_mean"][c], rtol=1e-5, atol=1e-7):
                fail(f"attn_mean of checkpoint {c}")
            ffn = f["importance/ffn"][c].astype(np.float64)
            if E:
                P, L, k, I = ffn.shape
                full = np.zeros((P, L, E, I))
                ids = f["importance/expert_ids"][c]
                for s in range(k):
                    np.put_along_axis(full, ids[:, :, s][:, :, None, None].repeat(I, 3), ffn[:, :, s][:, :, None, :], 2)
                ffn = full
            if not np.allclose(ffn.mean(0), f["aggregates/ffn_mean"][c], rtol=1e-5, atol=1e-7):
                fail(f"ffn_mean of checkpoint {c}")
            hit = f["evaluation/gold_rank"][c] < 10
            if not np.array_equal(hit, f["evaluation/hit_at_10"][c].astype(bool)):
                fail(f"hit_at_10 per prompt of checkpoint {c}")
            by_rel = np.array([hit[rel == r].mean() for r in range(f["relations/id"].shape[0])])
            if not np.allclose(by_rel, f["aggregates/hit_at_10"][c]):
                fail(f"hit_at_10 by relation of checkpoint {c}")
        print(f"{store}: aggregates agree with the per-prompt data")


def equal_done(ref, path):
    with h5py.File(ref, "r") as fr, h5py.File(path, "r") as f:
        units_c = f["units/checkpoint"][...]
        done = f["units/done"][...].astype(bool)
        C = f["checkpoints/name"].shape[0]
        complete = [c for c in range(C) if done[units_c == c].all()]
        units = np.flatnonzero(np.isin(units_c, complete))
        compared = 0
        for name in RESULTS:
            if name not in f:
                continue
            rows = units if name.startswith("aggregates/unit_") else complete
            x, y = fr[name][...][rows], f[name][...][rows]
            if x.tobytes() != y.tobytes():
                fail(f"{name} differs on the completed checkpoints {complete}")
            compared += x.size
        print(f"{path}: checkpoints {complete} equal {ref} ({compared} values)")


def lean(ref, path):
    with h5py.File(ref, "r") as fr, h5py.File(path, "r") as f:
        for name in ["importance/attn", "importance/ffn", "importance/expert_ids"]:
            if name in f:
                fail(f"{path} has {name} although store.per_prompt is none")
        compared = 0
        for name in RESULTS:
            if name in f:
                if fr[name][...].tobytes() != f[name][...].tobytes():
                    fail(f"{name} differs from {ref}")
                compared += f[name].size
        print(f"{path}: no per-prompt tensors; {compared} other values equal {ref}")


def close(a, b, tol):
    tol = float(tol)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        same_experts = None
        if "importance/expert_ids" in fa:
            ia, ib = fa["importance/expert_ids"][...], fb["importance/expert_ids"][...]
            same_experts = (ia == ib).all(axis=-1)  # [C, P, L]
        for name in RESULTS:
            if (name in fa) != (name in fb):
                fail(f"{name} is in one store only")
            if name not in fa:
                continue
            x, y = fa[name][...], fb[name][...]
            if x.shape != y.shape:
                fail(f"{name}: shapes {x.shape} and {y.shape}")
            if x.dtype.kind in "iu":
                differ = float(np.mean(x != y)) if x.size else 0.0
                print(f"{name}: {100 * differ:.3f}% of the entries differ")
                if differ > 0.01:
                    fail(f"{name}: {100 * differ:.2f}% of the entries differ (at most 1%)")
                continue
            x, y = x.astype(np.float64), y.astype(np.float64)
            if name == "importance/ffn" and same_experts is not None:
                keep = same_experts[..., None, None] & np.ones(x.shape, bool)
                x, y = x[keep], y[keep]
            err = float(np.max(np.abs(x - y))) if x.size else 0.0
            print(f"{name}: max |difference| {err:.2e}")
            if not err <= tol:
                fail(f"{name}: max |difference| {err:.2e} above {tol:.1e}")
        print(f"{a} and {b} agree within {tol:.1e}")


def half(ref, path, dtype):
    half_ulp = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}[dtype]
    # below the smallest normal number the spacing is fixed: half of it, absolute
    floor = {"float16": 2.0 ** -25, "bfloat16": 2.0 ** -134}[dtype]
    with h5py.File(ref, "r") as fr, h5py.File(path, "r") as f:
        if f.attrs["per_prompt_dtype"].decode() != dtype:
            fail(f"{path}: per_prompt_dtype is {f.attrs['per_prompt_dtype']}, not {dtype}")
        compared = 0
        for name in RESULTS:
            if name not in f:
                continue
            if name in ("importance/attn", "importance/ffn"):
                ds = f[name]
                size = ds.id.get_type().get_size()  # h5py shows bfloat16 as float32
                if size != 2:
                    fail(f"{name} of {path} has {size}-byte elements, expected 2")
                x = ds.astype("float32")[...].astype(np.float64)  # HDF5 widens it, exactly
                y = fr[name][...].astype(np.float64)
                err = np.abs(x - y)
                bound = np.maximum(np.abs(y) * half_ulp, floor) * (1 + 1e-9)
                if (err > bound).any():
                    at = np.unravel_index(np.argmax(err - bound), err.shape)
                    fail(f"{name} at {at}: {x[at]} in {dtype}, {y[at]} in float32 (beyond half an ulp)")
                print(f"{name}: max relative error {np.max(err / np.maximum(np.abs(y), 1e-30)):.2e} "
                      f"(half an ulp of {dtype}: {half_ulp:.2e}), {ds.id.get_storage_size()} bytes "
                      f"against {fr[name].id.get_storage_size()}")
            elif fr[name][...].tobytes() != f[name][...].tobytes():
                fail(f"{name} differs from {ref}")
            compared += f[name].size
        print(f"{path}: {compared} values checked against {ref}")


def snapshot(path, out):
    with h5py.File(path, "r") as f:
        np.savez(out, done=f["units/done"][...], rank=f["units/rank"][...],
                 seconds=f["units/seconds"][...])


def unchanged(snap, path):
    s = np.load(snap)
    with h5py.File(path, "r") as f:
        was = s["done"].astype(bool)
        for name in ["done", "rank", "seconds"]:
            now = f["units/" + name][...]
            if not np.array_equal(now[was], s[name][was]):
                fail(f"units done before ({was.sum()}) changed their {name}: redone or lost")
    print(f"{path}: the {int(was.sum())} units done before are untouched")


def digest(path):
    import hashlib
    h = hashlib.sha256()

    def visit(name, obj):
        if name == "analysis" or name.startswith("analysis/"):
            return
        h.update(name.encode())
        for key in sorted(obj.attrs):
            h.update(key.encode() + repr(obj.attrs[key]).encode())
        if isinstance(obj, h5py.Dataset):
            h.update(obj[...].tobytes())

    with h5py.File(path, "r") as f:
        for key in sorted(f.attrs):
            h.update(key.encode() + repr(f.attrs[key]).encode())
        f.visititems(visit)
    print(h.hexdigest())


def identical(a, b):
    skip = {"runs/log", "units/seconds", "units/rank"}
    values = 0
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if sorted(names_a) != sorted(names_b):
            fail(f"objects in one store only: {sorted(set(names_a) ^ set(names_b))}")
        for name in ["/"] + sorted(names_a):
            oa, ob = fa[name], fb[name]
            if sorted(oa.attrs) != sorted(ob.attrs):
                fail(f"{name}: attributes {sorted(oa.attrs)} vs {sorted(ob.attrs)}")
            for key in oa.attrs:
                if repr(oa.attrs[key]) != repr(ob.attrs[key]):
                    fail(f"{name}@{key}: {oa.attrs[key]!r} != {ob.attrs[key]!r}")
            if not isinstance(oa, h5py.Dataset) or name in skip:
                continue
            if (oa.dtype, oa.shape, oa.chunks) != (ob.dtype, ob.shape, ob.chunks):
                fail(f"{name}: {oa.dtype} {oa.shape} chunks {oa.chunks} vs "
                     f"{ob.dtype} {ob.shape} chunks {ob.chunks}")
            if oa[...].tobytes() != ob[...].tobytes():
                fail(f"{name} differs between {a} and {b}")
            values += oa.size
    print(f"{a} == {b}: {len(names_a)} objects, {values} values bit for bit "
          f"(runs/log, units/seconds, units/rank aside)")


def cut(a, b):
    """Two sweeps of one job with different unit sizes: every per-prompt and
    per-checkpoint result the same bits (the units' own flags, sums and
    timings aside); a per-checkpoint mean may differ by the order in which
    the units' float64 sums were added (reported, at most 1e-6 relative)."""
    same, close_, worst = 0, 0, 0.0
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names = []
        fa.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in sorted(names):
            leaf = n.split("/")[-1]
            if n.split("/")[0] in ("units", "runs") or leaf.startswith("unit_"):
                continue
            if n not in fb:
                fail(f"{n} is in {a} only")
            x, y = fa[n][...], fb[n][...]
            if x.shape != y.shape:
                fail(f"{n}: shapes {x.shape} and {y.shape}")
            if np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                same += 1
            elif leaf.endswith("_mean") and x.dtype.kind == "f":
                d = float(np.max(np.abs(x.astype(np.float64) - y)) /
                          max(1e-30, float(np.max(np.abs(x)))))
                if d > 1e-6:
                    fail(f"{n} differs by {d:.2e} of its largest value")
                close_ += 1
                worst = max(worst, d)
            else:
                fail(f"{n} differs between the unit cuts of {a} and {b}")
    print(f"{a} ~ {b}: {same} datasets bit for bit, {close_} means within {worst:.1e} "
          f"(the order of the units' sums)")


def wait_ablation(path, n, seconds):
    wait_units(path, n, seconds, "ablation/unit_done")


def wait_units(path, n, seconds, flags="units/done"):
    import os
    import time
    end = time.time() + float(seconds)
    while time.time() < end:
        if os.path.exists(path):
            try:
                with h5py.File(path, "r") as f:
                    if flags in f and int(f[flags][...].sum()) >= int(n):
                        return
            except OSError:
                pass  # being renamed into place
        time.sleep(0.02)
    sys.exit(1)


if __name__ == "__main__":
    commands = {"complete": complete, "equal": equal, "attribute": attribute, "aggregates": aggregates,
                "equal_done": equal_done, "snapshot": snapshot, "unchanged": unchanged,
                "wait_units": wait_units, "wait_ablation": wait_ablation, "lean": lean,
                "ablation": ablation, "digest": digest, "identical": identical, "half": half,
                "close": close, "cut": cut}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        sys.exit(2)
    commands[sys.argv[1]](*sys.argv[2:])
