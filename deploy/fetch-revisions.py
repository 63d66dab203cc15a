#!/usr/bin/env python3
"""Lists a HuggingFace model's intermediate revisions (branches named
step{N}-tokens{M}) and downloads the chosen ones into a hub cache, the one
lpi-sweep reads in place with [model] hub_cache = CACHE and repo = ORG/NAME.
Needs the Python package huggingface_hub and a machine that reaches the hub.

  deploy/fetch-revisions.py --repo allenai/OLMoE-1B-7B-0924 --list
  deploy/fetch-revisions.py --repo allenai/OLMoE-1B-7B-0924 --steps 0:100000 --every 4 --dry-run
  deploy/fetch-revisions.py --repo allenai/OLMo-7B --revision step1000-tokens4B --cache-dir /scratch/hub

Only the files lpi-sweep reads are fetched: config.json, the safetensors
weights and their index, tokenizer.json. --dry-run prints each revision, its
files and bytes and the total, and fetches nothing. Exit status: 0 done,
1 a download failed (rerun: what is complete is kept), 2 bad input, no
huggingface_hub, or the hub not reachable.
"""
import argparse
import fnmatch
import os
import re
import sys

PATTERNS = ["config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer.json"]
_NAME = re.compile(r"step(\d+)-tokens(\d+)([KMBT]?)")
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


class UsageError(Exception):
    """Bad input; the message names the option and what was expected."""


# --- network-free logic (tests/deploy/test_fetch_revisions.py) ---------------

def parse_revision(name):
    """(step, tokens) of a revision name step{N}-tokens{M}[KMBT], else None
    (as lpi-sweep's parse_checkpoint_name: "41B" is 41e9 tokens)."""
    m = _NAME.fullmatch(name)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)) * _SCALE[m.group(3)]


def sort_revisions(names):
    """([(name, step, tokens)] by step, [other names, sorted])."""
    steps, others = [], []
    for name in names:
        parsed = parse_revision(name)
        if parsed:
            steps.append((name,) + parsed)
        else:
            others.append(name)
    return sorted(steps, key=lambda r: (r[1], r[0])), sorted(others)


def parse_steps(text):
    """--steps FIRST:LAST, either side may be empty -> (first, last or None)."""
    if text is None:
        return 0, None
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not m:
        raise UsageError(f"--steps '{text}': expected FIRST:LAST (either side may be empty)")
    first = int(m.group(1)) if m.group(1) else 0
    last = int(m.group(2)) if m.group(2) else None
    if last is not None and last < first:
        raise UsageError(f"--steps '{text}': LAST is below FIRST")
    return first, last


def select(revisions, steps=(0, None), every=1, names=()):
    """The chosen revisions of sorted `revisions` [(name, step, tokens)], as
    lpi-sweep's [checkpoints] list, steps and every choose: the named ones
    (all when none are named), within the steps, then every k-th by step."""
    if every < 1:
        raise UsageError(f"--every {every}: must be at least 1")
    by_name = {r[0]: r for r in revisions}
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise UsageError(f"--revision {', '.join(unknown)}: not a step{{N}}-tokens{{M}} branch "
                             f"of the repository (--list shows them)")
        pool = sorted({by_name[n] for n in names}, key=lambda r: (r[1], r[0]))
    else:
        pool = list(revisions)
    first, last = steps
    pool = [r for r in pool if r[1] >= first and (last is None or r[1] <= last)]
    chosen = pool[::every]
    if not chosen:
        raise UsageError(f"no revision matches the selection (steps {first}:{'' if last is None else last}"
                         f", every {every}; {len(revisions)} revisions, --list shows them)")
    return chosen


def wanted_files(files):
    """The [(name, bytes)] of a revision that lpi-sweep reads, matched as
    snapshot_download's allow_patterns match (fnmatch on the path)."""
    return sorted((n, s or 0) for n, s in files if any(fnmatch.fnmatch(n, p) for p in PATTERNS))


def revision_problems(files):
    """What makes a revision unreadable by lpi-sweep, from its file names."""
    names = [n for n, _ in files]
    problems = []
    if "config.json" not in names:
        problems.append("no config.json")
    if not any(n.endswith(".safetensors") for n in names):
        pickles = [n for n in names if n.endswith((".bin", ".pt", ".pth"))]
        problems.append("no .safetensors weights" +
                        (f" (only {', '.join(sorted(pickles))}: PyTorch pickles, which lpi-sweep refuses)"
                         if pickles else ""))
    return problems


def human_bytes(n):
    """1536 -> '1.5 KiB' (as lpi-sweep --dry-run writes sizes)."""
    value, unit = float(n), 0
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return f"{value:.0f} {units[unit]}" if unit == 0 else f"{value:.1f} {units[unit]}"


def count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


def format_list(repo, revisions, others):
    lines = [f"{repo}: {count(len(revisions), 'revision')} step{{N}}-tokens{{M}}, by step"]
    lines += [f"  {name:<28} step {step:>8}  tokens {tokens}" for name, step, tokens in revisions]
    if others:
        lines.append("other branches (not swept): " + ", ".join(others))
    return "\n".join(lines)


def format_plan(repo, plan, cache_dir):
    """plan: [(name, [(file, bytes)], [problems])] -> the --dry-run text."""
    lines = [f"{repo} -> {cache_dir}"]
    total_files = total = 0
    for name, files, problems in plan:
        size = sum(s for _, s in files)
        total += size
        total_files += len(files)
        lines.append(f"{name}: {count(len(files), 'file')}, {human_bytes(size)} ({size} bytes)")
        lines += [f"    {f:<44} {human_bytes(s):>10}" for f, s in files]
        lines += [f"    WARNING: {p}: lpi-sweep cannot read this revision" for p in problems]
    lines.append(f"total: {count(len(plan), 'revision')}, {count(total_files, 'file')}, "
                 f"{human_bytes(total)} ({total} bytes)")
    return "\n".join(lines)


def default_cache_dir(env):
    """Where huggingface_hub caches: HF_HUB_CACHE, else HF_HOME/hub, else
    ~/.cache/huggingface/hub."""
    if env.get("HF_HUB_CACHE"):
        return env["HF_HUB_CACHE"]
    if env.get("HF_HOME"):
        return os.path.join(env["HF_HOME"], "hub")
    return os.path.join(os.path.expanduser("~"), ".cache", "huggingface", "hub")


def describe_error(exc, repo):
    """A sentence for a failure of the hub client: unreachable, not found, other."""
    kinds = {c.__name__ for c in type(exc).__mro__}
    if kinds & {"RepositoryNotFoundError", "GatedRepoError"}:
        return (f"repository {repo} is not on the hub or not open to you "
                f"(a private or gated one needs `huggingface-cli login`): {exc}")
    if "RevisionNotFoundError" in kinds:
        return f"a revision of {repo} is not on the hub: {exc}"
    if kinds & {"ConnectionError", "ConnectError", "ConnectTimeout", "Timeout", "TimeoutException",
                "OfflineModeIsEnabled", "LocalEntryNotFoundError", "NameResolutionError",
                "MaxRetryError", "gaierror"}:
        return (f"cannot reach the HuggingFace hub ({type(exc).__name__}: {exc}); run this on a "
                f"machine with network access to the hub (HF_HUB_OFFLINE unset), then copy or "
                f"share the cache folder")
    return f"{type(exc).__name__}: {exc}"


# --- the hub (huggingface_hub) ------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="fetch-revisions.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="ORG/NAME, e.g. allenai/OLMoE-1B-7B-0924")
    p.add_argument("--list", action="store_true", help="print the revisions by step and stop")
    p.add_argument("--steps", help="FIRST:LAST, either side may be empty")
    p.add_argument("--every", type=int, default=1, help="every N-th of the selection, by step")
    p.add_argument("--revision", action="append", default=[], help="a revision name (repeatable)")
    p.add_argument("--all", action="store_true", help="every revision (with --steps/--every: of those)")
    p.add_argument("--cache-dir", help="the hub cache (default: HF_HUB_CACHE, HF_HOME/hub or "
                                       "~/.cache/huggingface/hub)")
    p.add_argument("--dry-run", action="store_true",
                   help="print each revision, its files and bytes and the total; fetch nothing")
    return p.parse_args(argv)


def run(args, hub, out=sys.stdout):
    """The command over `hub`: the huggingface_hub module (or a stand-in)."""
    cache_dir = args.cache_dir or default_cache_dir(os.environ)
    api = hub.HfApi()
    revisions, others = sort_revisions(b.name for b in api.list_repo_refs(args.repo).branches)
    if args.list:
        print(format_list(args.repo, revisions, others), file=out)
        return 0
    if not (args.all or args.revision or args.steps or args.every > 1):
        raise UsageError("choose revisions: --revision NAME, --steps FIRST:LAST, --every N or --all "
                         "(--list shows them)")
    chosen = select(revisions, parse_steps(args.steps), args.every, args.revision)
    plan = []
    for name, _, _ in chosen:
        info = api.model_info(args.repo, revision=name, files_metadata=True)
        files = [(s.rfilename, s.size) for s in info.siblings]
        plan.append((name, wanted_files(files), revision_problems(files)))
    print(format_plan(args.repo, plan, cache_dir), file=out)
    if args.dry_run:
        return 0
    failed = []
    for i, (name, files, problems) in enumerate(plan):
        if problems:
            print(f"[{i + 1}/{len(plan)}] {name}: skipped ({'; '.join(problems)})", file=out)
            failed.append(name)
            continue
        try:
            folder = hub.snapshot_download(repo_id=args.repo, revision=name, cache_dir=cache_dir,
                                           allow_patterns=PATTERNS)
            print(f"[{i + 1}/{len(plan)}] {name}: {folder}", file=out, flush=True)
        except Exception as e:  # one revision's failure; the others go on
            print(f"[{i + 1}/{len(plan)}] {name}: FAILED: {describe_error(e, args.repo)}", file=out)
            failed.append(name)
    print(f"for the sweep job:\n[model]\nhub_cache = {os.path.abspath(cache_dir)}\n"
          f"repo = {args.repo}", file=out)
    if failed:
        print(f"{len(failed)} of {len(plan)} revisions not fetched: {', '.join(failed)} "
              f"(rerun: what is complete is kept)", file=out)
        return 1
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import huggingface_hub as hub
    except ImportError as e:
        print(f"fetch-revisions.py: the Python package huggingface_hub is missing ({e}): "
              f"pip install huggingface_hub, on a machine that reaches the hub", file=sys.stderr)
        return 2
    try:
        return run(args, hub)
    except UsageError as e:
        print(f"fetch-revisions.py: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the hub client: unreachable, not found, ...
        print(f"fetch-revisions.py: {describe_error(e, args.repo)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
