#!/usr/bin/env python3
"""Summary of an lpi-sweep store with h5py and numpy: the job, the runs, and
per checkpoint its HIT@10, mean base log-probability of the gold token, and
the attention head and FFN/expert neuron with the largest mean Gated-LPI
(from the store's per-checkpoint aggregates).

    /usr/bin/python3 analysis/scripts/sweep_summary.py STORE.h5
"""
import argparse

import h5py
import numpy as np


def text(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    args = parser.parse_args()
    with h5py.File(args.store, "r") as f:
        a = dict(f.attrs)
        moe = int(a["num_experts"]) > 0
        heads = int(a["num_heads"])
        names = text(f["checkpoints/name"][...])
        done = f["units/done"][...]
        aggregated = f["aggregates/done"][...].astype(bool)
        print(f"{args.store}: job {text([a['job_name']])[0]}, {text([a['architecture']])[0]}, "
              f"{a['num_layers']} layers, lens {text([a['lens']])[0]}, "
              f"{len(names)} checkpoints x {f['prompts/relation'].shape[0]} prompts, "
              f"units done {int(done.sum())}/{done.size}")
        for entry in text(f["runs/log"][...]):
            if entry:
                print(f"  run: {entry}")
        hit = f["aggregates/hit_at_10_all"][...]
        attn = f["aggregates/attn_mean"]
        ffn = f["aggregates/ffn_mean"]
        base = f["importance/base_logprob"]
        unit = "expert neuron (L,E,#)" if moe else "FFN neuron (L,#)"
        print(f"{'checkpoint':<24} {'HIT@10':>6} {'log p':>7}  {'top head':<10} {'LPI':>8}  "
              f"{'top ' + unit:<26} {'LPI':>8}")
        for c, name in enumerate(names):
            if not aggregated[c]:
                print(f"{name:<24} (not complete)")
                continue
            # The heads:1 condition's ranking: the sum of |mean| over the head's neurons.
            h = np.abs(attn[c]).reshape(attn.shape[1], heads, -1).sum(-1)  # [L, H]
            hl, hh = np.unravel_index(np.argmax(h), h.shape)
            m = ffn[c]
            idx = np.unravel_index(np.argmax(m), m.shape)
            neuron = f"L{idx[0]} E{idx[1]} #{idx[2]}" if moe else f"L{idx[0]} #{idx[1]}"
            print(f"{name:<24} {hit[c]:6.3f} {base[c].mean():7.3f}  {f'L{hl} H{hh}':<10} "
                  f"{h[hl, hh]:8.4f}  {neuron:<26} {m[idx]:8.4f}")
        last = np.flatnonzero(aggregated)
        if last.size:
            c = last[-1]
            rel = text(f["relations/id"][...])
            by_rel = f["aggregates/hit_at_10"][c]
            print(f"HIT@10 per relation at {names[c]}: " +
                  ", ".join(f"{r} {v:.2f}" for r, v in zip(rel, by_rel)))


if __name__ == "__main__":
    main()
