#!/usr/bin/env python3
"""Checks analysis/scripts/figures.py and report.py on stores that
lpi-analyze has written:

- every figure is a PNG (signature and IHDR read with struct) of the
  documented pixel size at --dpi, and is not blank (pixel std > 0);
- the report has Tables 2, 3 and 4 with numeric cells in this run's rows
  (Table 4 only when a store has /analysis/ablation), and stdout shows them;
- a store without /analysis is refused with exit code 2 and its name.

    /usr/bin/python3 tests/analysis/test_figures.py --out DIR STORE.h5 [STORE2.h5 ...]

Exit code 0 when all checks pass, 1 with a message per failure otherwise.
"""
import argparse
import math
import os
import re
import struct
import subprocess
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "analysis", "scripts")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# figures.py's documented sizes: an FFN and an ATTN panel, or one panel per
# store (at most 3 per row); a panel is 6 x 4.5 inches.
PANEL = (6.0, 4.5)
TWO_PANEL_FIGURES = ["fig1_jaccard.png", "fig1b_gain_concentration.png",
                     "fig2_mean_importance.png"]
PER_STORE_FIGURES = ["fig3_ffn_layers.png", "fig4_attn_layers.png", "fig5_ablation.png",
                     "fig5b_ablation_drop.png"]
NUMBER = re.compile(r"^-?\d+(\.\d+)?")

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL: {message}")


def run(script, args):
    """Runs a script with this interpreter; returns the completed process."""
    command = [sys.executable, os.path.join(SCRIPTS, script)] + args
    print("+", " ".join(command))
    return subprocess.run(command, capture_output=True, text=True)


def expected_size(name, stores, dpi):
    if name in TWO_PANEL_FIGURES:
        cols, rows = 2, 1
    else:
        cols, rows = min(stores, 3), math.ceil(stores / 3)
    return round(cols * PANEL[0] * dpi), round(rows * PANEL[1] * dpi)


def png_size(path):
    """(width, height) from the IHDR chunk, or None when not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def check_figures(folder, stores, dpi):
    for name in TWO_PANEL_FIGURES + PER_STORE_FIGURES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            fail(f"{path} was not written")
            continue
        size = png_size(path)
        if size is None:
            fail(f"{path} is not a PNG (signature or IHDR)")
            continue
        want = expected_size(name, stores, dpi)
        if any(abs(a - b) > 1 for a, b in zip(size, want)):
            fail(f"{path} is {size[0]} x {size[1]} px, expected {want[0]} x {want[1]}")
        elif matplotlib.image.imread(path).std() == 0:
            fail(f"{path} is blank (all pixels equal)")
        else:
            print(f"ok: {name} {size[0]} x {size[1]} px")


def table_rows(report, title):
    """Cells of the Markdown table under the heading that starts with `title`."""
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"### {title}")), None)
    if start is None:
        return None
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def check_report(path, stdout, any_ablation):
    with open(path, encoding="utf-8") as f:
        report = f.read()
    for title, required in (("Table 2 (FFN", True), ("Table 2 (ATTN", True),
                            ("Table 3", True), ("Table 4", any_ablation)):
        rows = table_rows(report, title)
        if rows is None:
            fail(f"{path} has no '{title}' table")
            continue
        ours = [r for r in rows if not r[0].startswith("paper:")]
        if not ours:
            fail(f"{path}: '{title}' has no rows for the stores")
        elif required and not any(NUMBER.match(c) for r in ours for c in r[1:]):
            fail(f"{path}: '{title}' has no numeric cell in the stores' rows")
        if not any(r[0].startswith("paper:") for r in rows) and title != "Table 2 (ATTN":
            fail(f"{path}: '{title}' lacks the paper's rows")
        if title.split(" (")[0] not in stdout:
            fail(f"report.py did not print '{title}' on stdout")
    for link in re.findall(r"\]\(([^)]+\.png)\)", report):
        if not os.path.isfile(os.path.join(os.path.dirname(path), link)):
            fail(f"{path} links {link}, which does not exist")
    print(f"ok: {path} ({len(report)} characters)")


def check_overlap_and_points(path, stores):
    """The overlap table holds each store's stored overlap (scope 0, x 100);
    the point-values table has a row per quoted paper value and store of its kind."""
    with open(path, encoding="utf-8") as f:
        report = f.read()
    rows = table_rows(report, "Top-1% set overlap")
    points = table_rows(report, "The paper's point values")
    if rows is None or points is None:
        fail(f"{path} lacks the overlap or the point-values table")
        return
    for store in stores:
        with h5py.File(store, "r") as f:
            g = f["analysis"]
            label = f.attrs["job_name"]
            label = label.decode() if isinstance(label, bytes) else str(label)
            want = 100 * g["ffn/overlap_jaccard"][0, 0]
            moe = int(f.attrs["num_experts"]) > 0
        mine = [r for r in rows if r[0].startswith(label) and r[1] == "FFN"]
        if not mine or not mine[0][3].startswith(f"{want:.1f}"):
            fail(f"{path}: overlap row of {label} {mine[:1]}, expected J {want:.1f}")
        kind = "OLMoE" if moe else "OLMo "
        quoted = [r for r in points if r[0].startswith(kind) and r[2].startswith(label)]
        if not quoted or not all(NUMBER.match(r[4]) or r[4].startswith("n/a") for r in quoted):
            fail(f"{path}: point values of {label}: {quoted[:2]}")
    print(f"ok: {path} overlap and point-value tables match the stores")


def check_refusal(folder):
    """A store without /analysis: exit 2 and a message naming it."""
    bare = os.path.join(folder, "no-analysis.h5")
    with h5py.File(bare, "w") as f:
        f.attrs["job_name"] = "bare"
    for script, extra in (("figures.py", ["--out", os.path.join(folder, "bare-figs")]),
                          ("report.py", ["--out", os.path.join(folder, "bare.md")])):
        done = run(script, [bare] + extra)
        if done.returncode != 2 or bare not in done.stderr or "lpi-analyze" not in done.stderr:
            fail(f"{script} on a store without /analysis: exit {done.returncode}, "
                 f"stderr {done.stderr.strip()!r} (expected 2 and the store's name)")
        else:
            print(f"ok: {script} refuses {bare}: {done.stderr.strip()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", metavar="STORE.h5")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    figures = os.path.join(args.out, "figures")
    report = os.path.join(args.out, "report.md")

    done = run("figures.py", args.stores + ["--out", figures, "--dpi", str(args.dpi)])
    if done.returncode != 0:
        fail(f"figures.py exit {done.returncode}: {done.stderr.strip()}")
    else:
        check_figures(figures, len(args.stores), args.dpi)

    done = run("report.py", args.stores + ["--out", report, "--figures", figures])
    if done.returncode != 0:
        fail(f"report.py exit {done.returncode}: {done.stderr.strip()}")
    else:
        any_ablation = False
        for path in args.stores:
            with h5py.File(path, "r") as f:
                any_ablation |= "analysis/ablation" in f
        check_report(report, done.stdout, any_ablation)
        check_overlap_and_points(report, args.stores)

    check_refusal(args.out)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
