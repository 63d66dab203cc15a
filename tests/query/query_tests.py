#!/usr/bin/python3
"""lpi-query against values computed here with h5py and numpy from the same
stores: the reference stores of the sweep tests (an OLMoE and a dense OLMo,
written by `sweep.single_process`) and its lean store (no per-prompt tensors).

  query_tests.py values   list, top (all prompts, per relation, MoE expanded), neuron
  query_tests.py errors   bad input: exit 2 and a one-line message naming the store

Environment: LPI_TOOLS_DIR (bin/), SWEEP_WORK (the sweep tests' scratch),
QUERY_WORK (this test's scratch). Exit 0 when every check holds.
"""
import csv
import io
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

TOOL = os.path.join(os.environ["LPI_TOOLS_DIR"], "lpi-query")
SWEEP = os.environ["SWEEP_WORK"]
WORK = os.environ["QUERY_WORK"]
STORES = {m: os.path.join(SWEEP, f"ref-{m}.h5") for m in ("moe", "dense")}
LEAN = os.path.join(SWEEP, "lean-moe.h5")
checks = 0


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def expect(cond, message):
    global checks
    checks += 1
    if not cond:
        fail(message)


def run(*args):
    p = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def query_csv(*args):
    rc, out, err = run(*args, "--csv", "-")
    expect(rc == 0, f"lpi-query {' '.join(map(str, args))} exited {rc}: {err}")
    rows = list(csv.reader(io.StringIO(out)))
    return rows[0], rows[1:]


def text(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


class Store:
    """What the tests need of a store, read with h5py only."""

    def __init__(self, path):
        self.path = path
        with h5py.File(path, "r") as f:
            a = f.attrs
            self.attrs = dict(a)
            self.L, self.H, self.dh = int(a["num_layers"]), int(a["num_heads"]), int(a["head_dim"])
            self.I, self.E, self.k = (int(a["intermediate_size"]), int(a["num_experts"]),
                                      int(a["experts_per_token"]))
            self.names = text(f["checkpoints/name"][...])
            self.steps = f["checkpoints/step"][...]
            self.tokens = f["checkpoints/tokens"][...]
            self.done = f["aggregates/done"][...]
            self.relations = text(f["relations/id"][...])
            self.prompt_relation = f["prompts/relation"][...]
            self.attn_mean = f["aggregates/attn_mean"][...]
            self.ffn_mean = f["aggregates/ffn_mean"][...]
            self.per_prompt = {n: f[f"importance/{n}"][...] for n in ("attn", "ffn", "expert_ids")
                               if f"importance/{n}" in f}

    def moe(self):
        return self.E > 0

    def aggregate(self, family, c):
        """[L, H, dh], [L, E, I] or [L, I] from the aggregates."""
        if family == "attn":
            return self.attn_mean[c].reshape(self.L, self.H, self.dh).astype(np.float64)
        return self.ffn_mean[c].astype(np.float64)

    def relation_mean(self, family, c, r):
        """The mean over relation r's prompts, MoE expanded to [L, E, I] (unchosen = 0),
        summed prompt by prompt in float64."""
        prompts = np.flatnonzero(self.prompt_relation == r)
        if family == "attn":
            acc = np.zeros((self.L, self.H, self.dh))
            for p in prompts:
                acc += self.per_prompt["attn"][c, p].reshape(self.L, self.H, self.dh)
        elif not self.moe():
            acc = np.zeros((self.L, self.I))
            for p in prompts:
                acc += self.per_prompt["ffn"][c, p]
        else:
            acc = np.zeros((self.L, self.E, self.I))
            for p in prompts:
                full = np.zeros((self.L, self.E, self.I))
                ids = self.per_prompt["expert_ids"][c, p]  # [L, k]
                for l in range(self.L):
                    for j in range(self.k):
                        full[l, ids[l, j]] += self.per_prompt["ffn"][c, p, l, j]
                acc += full
        return acc / len(prompts)

    def columns(self, family):
        if family == "attn":
            return ["layer", "head", "dim"]
        return ["layer", "expert", "neuron"] if self.moe() else ["layer", "neuron"]


def expected_top(values, k):
    """Rows (rank, *index, value) of the k largest |value|, ties to the lower flat index."""
    flat = values.reshape(-1)
    order = np.lexsort((np.arange(flat.size), -np.abs(flat)))[:k]
    return [(rank + 1, *np.unravel_index(i, values.shape), flat[i]) for rank, i in enumerate(order)]


def check_top(s, family, c, k, rows, expected, what):
    expect(len(rows) == min(k, expected.size), f"{what}: {len(rows)} rows, expected {min(k, expected.size)}")
    for row, want in zip(rows, expected_top(expected, k)):
        got_index = [int(x) for x in row[:-1]]
        want_index = [int(x) for x in want[:-1]]
        expect(got_index == want_index, f"{what}: row {row}, expected {want}")
        expect(np.isclose(float(row[-1]), want[-1], rtol=1e-6, atol=1e-12),
               f"{what}: value {row[-1]}, expected {want[-1]!r}")


def values_case():
    os.makedirs(WORK, exist_ok=True)
    for m, path in STORES.items():
        s = Store(path)
        C = len(s.names)
        expect(s.done.all(), f"{path}: the reference store is not complete")
        # list: the model, every checkpoint and relation.
        header, rows = query_csv("list", "--store", path)
        expect(header == ["kind", "index", "name", "value", "step", "tokens", "done", "prompts"],
               f"list header {header}")
        model = {r[2]: r[3] for r in rows if r[0] == "model"}
        for key in ("model_name", "architecture"):
            expect(model[key] == text([s.attrs[key]])[0], f"list {key}: {model[key]}")
        for key in ("num_layers", "num_heads", "head_dim", "intermediate_size", "num_experts",
                    "experts_per_token", "per_prompt_attn", "per_prompt_ffn"):
            expect(int(model[key]) == int(s.attrs[key]), f"list {key}: {model[key]}")
        cps = [r for r in rows if r[0] == "checkpoint"]
        expect([(int(r[1]), r[2], int(r[4]), int(r[5]), int(r[6])) for r in cps] ==
               [(c, s.names[c], int(s.steps[c]), int(s.tokens[c]), int(s.done[c]))
                for c in range(C)], f"list checkpoints {cps}")
        rels = [r for r in rows if r[0] == "relation"]
        expect([(r[2], int(r[7])) for r in rels] ==
               [(rid, int((s.prompt_relation == i).sum())) for i, rid in enumerate(s.relations)],
               f"list relations {rels}")
        rc, out, err = run("list", "--store", path)
        expect(rc == 0 and all(n in out for n in s.names) and s.relations[0] in out,
               f"list table: {out}{err}")

        # top over all prompts, both families, by step and by index.
        for family in ("attn", "ffn"):
            for c in (C - 1, C // 2):
                header, rows = query_csv("top", "--store", path, "--step", s.steps[c],
                                         "--family", family, "--k", 20)
                expect(header == ["rank", *s.columns(family), "value"], f"top header {header}")
                check_top(s, family, c, 20, rows, s.aggregate(family, c),
                          f"{m} top {family} step {s.steps[c]}")
            _, by_index = query_csv("top", "--store", path, "--checkpoint", C - 1, "--family", family)
            _, by_step = query_csv("top", "--store", path, "--step", s.steps[-1], "--family", family)
            expect(by_index == by_step and len(by_index) == 20, "--checkpoint and --step differ")
        # k larger than the family: every neuron, ranked.
        n = s.aggregate("attn", 0).size
        _, rows = query_csv("top", "--store", path, "--checkpoint", 0, "--family", "attn",
                            "--k", n + 5)
        check_top(s, "attn", 0, n + 5, rows, s.aggregate("attn", 0), f"{m} top all attn")

        # top per relation: the mean of the per-prompt tensors (MoE expanded).
        for r, rid in enumerate(s.relations):
            for family in ("attn", "ffn"):
                c = C - 1 - r % 2
                want = s.relation_mean(family, c, r)
                _, rows = query_csv("top", "--store", path, "--step", s.steps[c], "--family",
                                    family, "--relation", rid, "--k", 15)
                check_top(s, family, c, 15, rows, want, f"{m} top {family} relation {rid}")
        # The expansion used here agrees with the store's own all-prompt mean.
        c = C - 1
        weights = [np.mean(s.prompt_relation == r) for r in range(len(s.relations))]
        recombined = sum(w * s.relation_mean("ffn", c, r) for r, w in enumerate(weights))
        expect(np.allclose(recombined, s.aggregate("ffn", c), rtol=1e-4, atol=1e-7),
               f"{m}: relation means do not recombine into aggregates/ffn_mean")

        # neuron: the top neuron of the last checkpoint, at every checkpoint.
        for family in ("attn", "ffn"):
            top = expected_top(s.aggregate(family, C - 1), 1)[0]
            index = [int(x) for x in top[1:-1]]
            args = dict(zip(s.columns(family), index))
            flags = [x for key, v in args.items() for x in (f"--{key}", v)]
            header, rows = query_csv("neuron", "--store", path, "--family", family, *flags)
            expect(header == ["checkpoint", "name", "step", "tokens", "done", "value"],
                   f"neuron header {header}")
            want = [s.aggregate(family, c)[tuple(index)] for c in range(C)]
            expect(len(rows) == C, f"neuron: {len(rows)} rows, expected {C}")
            for c, row in enumerate(rows):
                expect(row[:5] == [str(c), s.names[c], str(s.steps[c]), str(s.tokens[c]), "1"],
                       f"neuron row {row}")
                expect(np.isclose(float(row[5]), want[c], rtol=1e-6, atol=1e-12),
                       f"{m} neuron {family} {args} checkpoint {c}: {row[5]}, expected {want[c]}")
            # The same neuron per relation.
            rid = s.relations[-1]
            _, rows = query_csv("neuron", "--store", path, "--family", family, *flags,
                                "--relation", rid)
            for c, row in enumerate(rows):
                w = s.relation_mean(family, c, len(s.relations) - 1)[tuple(index)]
                expect(np.isclose(float(row[5]), w, rtol=1e-6, atol=1e-12),
                       f"{m} neuron {family} {args} relation {rid} checkpoint {c}: {row[5]}, "
                       f"expected {w}")
            # The table shows the same rows; --csv FILE writes what --csv - prints.
            rc, out, err = run("neuron", "--store", path, "--family", family, *flags)
            table = [line.split() for line in out.splitlines()[2:]]
            expect(rc == 0 and [t[:4] for t in table] == [r[:4] for r in rows],
                   f"neuron table: {out}{err}")
            out_file = os.path.join(WORK, f"neuron-{m}-{family}.csv")
            rc, _, err = run("neuron", "--store", path, "--family", family, *flags, "--csv", out_file)
            _, stdout_csv, _ = run("neuron", "--store", path, "--family", family, *flags, "--csv", "-")
            expect(rc == 0 and open(out_file).read() == stdout_csv, f"--csv {out_file}: {err}")

    # A MoE expert neuron that some prompts' routing skipped: the relation mean
    # counts those prompts as 0 (checked on every expert of one neuron).
    s = Store(STORES["moe"])
    c, r = len(s.names) - 1, 0
    want = s.relation_mean("ffn", c, r)
    for e in range(s.E):
        _, rows = query_csv("neuron", "--store", s.path, "--family", "ffn", "--layer", 0,
                            "--expert", e, "--neuron", 3, "--relation", s.relations[r])
        expect(np.isclose(float(rows[c][5]), want[0, e, 3], rtol=1e-6, atol=1e-12),
               f"expert {e}: {rows[c][5]}, expected {want[0, e, 3]}")

    # A checkpoint whose aggregates are not done: marked by neuron and list, refused by top.
    partial = os.path.join(WORK, "partial-dense.h5")
    shutil.copyfile(STORES["dense"], partial)
    with h5py.File(partial, "r+") as f:
        f["aggregates/done"][2] = 0
    s = Store(partial)
    _, rows = query_csv("list", "--store", partial)
    expect([r[6] for r in rows if r[0] == "checkpoint"] == ["1", "1", "0"] + ["1"] * (len(s.names) - 3),
           f"list of a partial store: {rows}")
    _, rows = query_csv("neuron", "--store", partial, "--family", "ffn", "--layer", 1, "--neuron", 0)
    expect(rows[2][4:] == ["0", ""] and rows[3][4] == "1" and rows[3][5] != "",
           f"neuron on a partial store: {rows}")
    rc, out, _ = run("neuron", "--store", partial, "--family", "ffn", "--layer", 1, "--neuron", 0)
    expect(rc == 0 and "(not done)" in out, f"neuron table on a partial store: {out}")
    expect_error(["top", "--store", partial, "--step", s.steps[2], "--family", "ffn"],
                 [partial, "is not done", s.names[2]])
    print(f"values: {checks} checks passed")


def expect_error(args, fragments, rc=2):
    got, out, err = run(*args)
    what = "lpi-query " + " ".join(map(str, args))
    expect(got == rc, f"{what} exited {got}, expected {rc}: {err}")
    expect(out == "", f"{what} printed on stdout: {out}")
    expect(err.count("\n") == 1, f"{what}: message not one line: {err!r}")
    for fragment in fragments:
        expect(str(fragment) in err, f"{what} did not say '{fragment}': {err}")
    print(f"ok: exit {got}: {err.strip()}")


def errors_case():
    os.makedirs(WORK, exist_ok=True)
    moe, dense = STORES["moe"], STORES["dense"]
    s = Store(moe)
    d = Store(dense)
    not_hdf5 = os.path.join(WORK, "not-hdf5.h5")
    with open(not_hdf5, "w") as f:
        f.write("hello\n")
    foreign = os.path.join(WORK, "foreign.h5")
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    missing = os.path.join(WORK, "missing.h5")
    bad_step = int(s.steps.max()) + 1
    C = len(s.names)
    cases = [
        (["list", "--store", not_hdf5], [not_hdf5, "not an HDF5 file"]),
        (["top", "--store", foreign, "--step", 0, "--family", "ffn"],
         [foreign, "not an lpi-sweep store"]),
        (["list", "--store", missing], [missing, "does not exist"]),
        (["top", "--store", moe, "--step", bad_step, "--family", "ffn"],
         [moe, f"no checkpoint at step {bad_step}", ", ".join(str(x) for x in s.steps)]),
        (["top", "--store", moe, "--checkpoint", C, "--family", "attn"],
         [moe, f"--checkpoint {C} is out of range", f"0..{C - 1}"]),
        (["top", "--store", moe, "--checkpoint", -1, "--family", "attn"], [moe, f"0..{C - 1}"]),
        (["top", "--store", moe, "--step", 0, "--family", "ffn", "--relation", "nope"],
         [moe, "no relation 'nope'", s.relations[0]]),
        (["top", "--store", moe, "--step", 0, "--family", "mlp"], ["--family must be"]),
        (["top", "--store", moe, "--family", "ffn"], ["--step N or --checkpoint INDEX"]),
        (["top", "--store", moe, "--step", 0, "--checkpoint", 0, "--family", "ffn"],
         ["--step N or --checkpoint INDEX"]),
        (["top", "--store", moe, "--step", 0, "--family", "ffn", "--k", 0], ["--k must be"]),
        (["top", "--store", moe, "--step", "x", "--family", "ffn"], ["step"]),
        (["top", "--step", 0, "--family", "ffn"], ["--store is required"]),
        (["sideways", "--store", moe], ["unknown command 'sideways'"]),
        ([], ["a command is required"]),
        (["list", "--store", moe, "--bogus"], ["bogus"]),
        (["neuron", "--store", moe, "--family", "attn", "--layer", s.L, "--head", 0, "--dim", 0],
         [moe, f"--layer {s.L} is out of range", f"0..{s.L - 1}"]),
        (["neuron", "--store", moe, "--family", "attn", "--layer", 0, "--head", s.H, "--dim", 0],
         [moe, f"--head {s.H} is out of range", f"0..{s.H - 1}"]),
        (["neuron", "--store", moe, "--family", "attn", "--layer", 0, "--head", 0, "--dim", s.dh],
         [moe, f"--dim {s.dh} is out of range", f"0..{s.dh - 1}"]),
        (["neuron", "--store", moe, "--family", "attn", "--layer", 0, "--head", 0],
         [moe, "missing --dim"]),
        (["neuron", "--store", moe, "--family", "attn", "--layer", 0, "--neuron", 0],
         [moe, "--neuron does not apply"]),
        (["neuron", "--store", moe, "--family", "ffn", "--layer", 0, "--expert", s.E,
          "--neuron", 0], [moe, f"--expert {s.E} is out of range", f"0..{s.E - 1}"]),
        (["neuron", "--store", moe, "--family", "ffn", "--layer", 0, "--expert", 0,
          "--neuron", s.I], [moe, f"--neuron {s.I} is out of range", f"0..{s.I - 1}"]),
        (["neuron", "--store", moe, "--family", "ffn", "--layer", 0, "--neuron", 0],
         [moe, "missing --expert", f"0..{s.E - 1}"]),
        (["neuron", "--store", moe, "--family", "ffn", "--layer", 0, "--head", 0, "--expert", 0,
          "--neuron", 0], [moe, "--head does not apply"]),
        (["neuron", "--store", dense, "--family", "ffn", "--layer", 0, "--expert", 0,
          "--neuron", 0], [dense, "--expert does not apply", "dense"]),
        (["neuron", "--store", dense, "--family", "ffn", "--layer", -1, "--neuron", 0],
         [dense, "--layer -1 is out of range", f"0..{d.L - 1}"]),
        (["neuron", "--store", dense, "--family", "ffn", "--layer", 0, "--neuron", d.I],
         [dense, f"--neuron {d.I} is out of range", f"0..{d.I - 1}"]),
        (["neuron", "--store", moe, "--family", "ffn", "--layer", 0, "--expert", 0,
          "--neuron", 0, "--relation", "nope"], [moe, "no relation 'nope'"]),
        (["top", "--store", LEAN, "--step", 0, "--family", "ffn", "--relation", s.relations[0]],
         [LEAN, "no per-prompt ffn", "per_prompt_ffn"]),
        (["top", "--store", LEAN, "--step", 0, "--family", "attn", "--relation", s.relations[0]],
         [LEAN, "no per-prompt attn"]),
        (["neuron", "--store", LEAN, "--family", "ffn", "--layer", 0, "--expert", 0,
          "--neuron", 0, "--relation", s.relations[0]], [LEAN, "no per-prompt ffn"]),
        (["list", "--store", moe, "--csv", os.path.join(WORK, "no-such-dir", "x.csv")],
         ["cannot write --csv"]),
    ]
    for args, fragments in cases:
        expect_error(args, fragments)
    # Without --relation the lean store answers from its aggregates.
    header, rows = query_csv("top", "--store", LEAN, "--step", 0, "--family", "ffn", "--k", 5)
    check_top(s, "ffn", 0, 5, rows, Store(LEAN).aggregate("ffn", 0), "lean top ffn")
    rc, out, _ = run("--help")
    expect(rc == 0 and "lpi-query top" in out and "lpi-query neuron" in out, f"--help: {out}")
    print(f"errors: {checks} checks passed")


if __name__ == "__main__":
    case = sys.argv[1] if len(sys.argv) > 1 else ""
    if case == "values":
        values_case()
    elif case == "errors":
        errors_case()
    else:
        fail("usage: query_tests.py values|errors")
