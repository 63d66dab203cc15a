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
  check_store.py wait_units STORE N SECONDS     wait until N units are done (exit 1 on timeout)
Exit status 0 when the check holds; the reason is printed otherwise.
"""
import sys

import h5py
import numpy as np

RESULTS = ["importance/target", "importance/base_logprob", "importance/attn", "importance/ffn",
           "importance/expert_ids", "evaluation/gold_rank", "evaluation/hit_at_10",
           "aggregates/attn_mean", "aggregates/ffn_mean", "aggregates/hit_at_10",
           "aggregates/hit_at_10_all", "aggregates/unit_attn_sum", "aggregates/unit_ffn_sum"]


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
        print(f"{path}: {done.size} units done, {agg.size} checkpoints aggregated")


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


def wait_units(path, n, seconds):
    import os
    import time
    end = time.time() + float(seconds)
    while time.time() < end:
        if os.path.exists(path):
            try:
                with h5py.File(path, "r") as f:
                    if int(f["units/done"][...].sum()) >= int(n):
                        return
            except OSError:
                pass  # being renamed into place
        time.sleep(0.02)
    sys.exit(1)


if __name__ == "__main__":
    commands = {"complete": complete, "equal": equal, "attribute": attribute, "aggregates": aggregates,
                "equal_done": equal_done, "snapshot": snapshot, "unchanged": unchanged,
                "wait_units": wait_units, "lean": lean}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        sys.exit(2)
    commands[sys.argv[1]](*sys.argv[2:])
