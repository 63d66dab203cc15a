#!/usr/bin/env python3
"""Summary of an lpi-attribute HDF5 file with h5py and numpy: its options,
shapes, and the top attention heads and FFN/expert neurons by mean Gated-LPI.

    /usr/bin/python3 analysis/scripts/store_summary.py FILE.h5 [--top N]
"""
import argparse

import h5py
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    with h5py.File(args.file, "r") as f:
        a = dict(f.attrs)
        print(f"{args.file}: {a['architecture']}, lens {a['lens']}, target {a['target']}, "
              f"format {a['format']} v{a['format_version']}")
        imp = f["importance"]
        attn = imp["attn"][...]  # [P, L, H*dh]
        ffn = imp["ffn"][...]    # [P, L, I] or [P, L, k, I]
        P, L, _ = attn.shape
        heads = int(a["num_heads"])
        print(f"prompts {P}, layers {L}, attn {attn.shape}, ffn {ffn.shape}")
        # The masks' ranking: the sum of |mean over prompts| over the head's neurons.
        head_score = np.abs(attn.mean(0)).reshape(L, heads, -1).sum(-1)  # [L, H]
        order = np.argsort(head_score, axis=None)[::-1][: args.top]
        for flat in order:
            layer, head = divmod(int(flat), heads)
            print(f"head L{layer} H{head} {head_score[layer, head]:.5f}")
        if "expert_ids" in imp:
            ids = imp["expert_ids"][...]  # [P, L, k]
            experts, inter = int(a["num_experts"]), ffn.shape[-1]
            full = np.zeros((P, L, experts, inter), dtype=np.float32)
            p_idx, l_idx, s_idx = np.indices(ids.shape)
            full[p_idx, l_idx, ids] = ffn[p_idx, l_idx, s_idx]
            mean = full.mean(0)  # [L, E, I]
            order = np.argsort(mean, axis=None)[::-1][: args.top]
            for flat in order:
                layer, e, i = np.unravel_index(flat, mean.shape)
                print(f"expert neuron L{layer} E{e} #{i} {mean[layer, e, i]:.5f}")
        else:
            mean = ffn.mean(0)  # [L, I]
            order = np.argsort(mean, axis=None)[::-1][: args.top]
            for flat in order:
                layer, i = np.unravel_index(flat, mean.shape)
                print(f"FFN neuron L{layer} #{i} {mean[layer, i]:.5f}")
        rel = f["prompts/relation"][...]
        ids = [s.decode() if isinstance(s, bytes) else s for s in f["relations/id"][...]]
        for r, name in enumerate(ids):
            print(f"relation {name}: {(rel == r).sum()} prompts")


if __name__ == "__main__":
    main()
