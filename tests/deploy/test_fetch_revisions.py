#!/usr/bin/python3
"""deploy/fetch-revisions.py without the network: revision names to steps and
tokens, sorting, selection, byte totals and the texts of --list and
--dry-run, over ref and file size lists given here; the command over a
stand-in for the hub (what it would fetch, and that --dry-run fetches
nothing); the messages when huggingface_hub is missing or the hub is not
reachable (a stand-in package on PYTHONPATH)."""
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "deploy", "fetch-revisions.py")
spec = importlib.util.spec_from_file_location("fetch_revisions", SCRIPT)
fr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fr)

# Branch names as the OLMo repositories have them, in the hub's order (not by step).
BRANCHES = ["main", "step10000-tokens41B", "step5000-tokens20B", "step1000-tokens4194M",
            "step0-tokens0", "step20000-tokens83B", "stage1-step10-tokens1B", "step15000-tokens62B"]
FILES = {  # name -> size, as model_info(files_metadata=True) lists them
    ".gitattributes": 1519, "README.md": 4096, "config.json": 1020, "generation_config.json": 150,
    "model-00001-of-00003.safetensors": 4997184424, "model-00002-of-00003.safetensors": 4932351424,
    "model-00003-of-00003.safetensors": 3908186080, "model.safetensors.index.json": 32145,
    "tokenizer.json": 2115417, "tokenizer_config.json": 5000, "pytorch_model.bin": 13837650000,
}


class Names(unittest.TestCase):
    def test_parse_revision(self):
        self.assertEqual(fr.parse_revision("step10000-tokens41B"), (10000, 41 * 10**9))
        self.assertEqual(fr.parse_revision("step1000-tokens4194M"), (1000, 4194 * 10**6))
        self.assertEqual(fr.parse_revision("step1000-tokens4B"), (1000, 4 * 10**9))
        self.assertEqual(fr.parse_revision("step0-tokens0"), (0, 0))
        self.assertEqual(fr.parse_revision("step5-tokens7K"), (5, 7000))
        for other in ["main", "stage1-step10-tokens1B", "step1-tokens2X", "step-tokens1B",
                      "step1-tokens1B/x", "step1000-tokens4B "]:
            self.assertIsNone(fr.parse_revision(other), other)

    def test_sort_by_step_not_by_name(self):
        revisions, others = fr.sort_revisions(BRANCHES)
        self.assertEqual([r[1] for r in revisions], [0, 1000, 5000, 10000, 15000, 20000])
        self.assertEqual(revisions[1], ("step1000-tokens4194M", 1000, 4194 * 10**6))
        self.assertEqual(others, ["main", "stage1-step10-tokens1B"])


class Selection(unittest.TestCase):
    revisions = fr.sort_revisions(BRANCHES)[0]

    def names(self, *args, **kw):
        return [r[0] for r in fr.select(self.revisions, *args, **kw)]

    def test_steps_every_and_names(self):
        self.assertEqual(fr.parse_steps("1000:15000"), (1000, 15000))
        self.assertEqual(fr.parse_steps(":5000"), (0, 5000))
        self.assertEqual(fr.parse_steps("10000:"), (10000, None))
        self.assertEqual(fr.parse_steps(None), (0, None))
        self.assertEqual(len(self.names()), 6)
        self.assertEqual(self.names((1000, 15000)),
                         ["step1000-tokens4194M", "step5000-tokens20B", "step10000-tokens41B",
                          "step15000-tokens62B"])
        self.assertEqual(self.names((1000, 15000), 2), ["step1000-tokens4194M", "step10000-tokens41B"])
        self.assertEqual(self.names((0, None), 3), ["step0-tokens0", "step10000-tokens41B"])
        self.assertEqual(self.names(names=["step10000-tokens41B", "step0-tokens0", "step0-tokens0"]),
                         ["step0-tokens0", "step10000-tokens41B"])
        self.assertEqual(self.names((5000, None), names=["step10000-tokens41B", "step0-tokens0"]),
                         ["step10000-tokens41B"])

    def test_bad_selection_is_named(self):
        for text in ["ten", "5", "5:x", "9:3"]:
            with self.assertRaisesRegex(fr.UsageError, f"--steps '{text}'"):
                fr.parse_steps(text)
        with self.assertRaisesRegex(fr.UsageError, "--revision main, step7-tokens7: not a step"):
            fr.select(self.revisions, names=["main", "step7-tokens7"])
        with self.assertRaisesRegex(fr.UsageError, "--every 0"):
            fr.select(self.revisions, every=0)
        with self.assertRaisesRegex(fr.UsageError, "no revision matches .*steps 30000:"):
            fr.select(self.revisions, (30000, None))


class Files(unittest.TestCase):
    def test_only_what_the_sweep_reads(self):
        files = fr.wanted_files(FILES.items())
        self.assertEqual([n for n, _ in files],
                         ["config.json", "model-00001-of-00003.safetensors",
                          "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
                          "model.safetensors.index.json", "tokenizer.json"])
        self.assertEqual(sum(s for _, s in files), 13839870510)
        self.assertEqual(fr.wanted_files([("config.json", None)]), [("config.json", 0)])
        self.assertEqual(fr.revision_problems(FILES.items()), [])
        self.assertEqual(fr.revision_problems([("config.json", 1), ("pytorch_model.bin", 9)]),
                         ["no .safetensors weights (only pytorch_model.bin: PyTorch pickles, "
                          "which lpi-sweep refuses)"])
        self.assertEqual(fr.revision_problems([("model.safetensors", 9)]), ["no config.json"])

    def test_human_bytes(self):
        self.assertEqual(fr.human_bytes(0), "0 B")
        self.assertEqual(fr.human_bytes(1023), "1023 B")
        self.assertEqual(fr.human_bytes(1536), "1.5 KiB")
        self.assertEqual(fr.human_bytes(13840891510), "12.9 GiB")
        self.assertEqual(fr.human_bytes(5 * 2**40), "5.0 TiB")
        self.assertEqual(fr.human_bytes(5 * 2**50), "5120.0 TiB")

    def test_texts(self):
        plan = [("step0-tokens0", [("config.json", 1020), ("model.safetensors", 2048)], []),
                ("step1000-tokens4B", [("config.json", 1020)], ["no .safetensors weights"])]
        self.assertEqual(fr.format_plan("allenai/OLMo-7B", plan, "/c").splitlines(), [
            "allenai/OLMo-7B -> /c",
            "step0-tokens0: 2 files, 3.0 KiB (3068 bytes)",
            "    config.json                                      1020 B",
            "    model.safetensors                               2.0 KiB",
            "step1000-tokens4B: 1 file, 1020 B (1020 bytes)",
            "    config.json                                      1020 B",
            "    WARNING: no .safetensors weights: lpi-sweep cannot read this revision",
            "total: 2 revisions, 3 files, 4.0 KiB (4088 bytes)"])
        revisions, others = fr.sort_revisions(BRANCHES[:3])
        self.assertEqual(fr.format_list("r/m", revisions, others).splitlines(), [
            "r/m: 2 revisions step{N}-tokens{M}, by step",
            "  step5000-tokens20B           step     5000  tokens 20000000000",
            "  step10000-tokens41B          step    10000  tokens 41000000000",
            "other branches (not swept): main"])

    def test_default_cache_dir(self):
        self.assertEqual(fr.default_cache_dir({"HF_HUB_CACHE": "/a", "HF_HOME": "/b"}), "/a")
        self.assertEqual(fr.default_cache_dir({"HF_HOME": "/b"}), "/b/hub")
        self.assertTrue(fr.default_cache_dir({}).endswith("/.cache/huggingface/hub"))


# A stand-in for the hub: branches and per-revision file lists given here; a
# download records its arguments.
class Hub:
    def __init__(self, files_of):
        self.files_of, self.downloads = files_of, []
        hub = self

        class HfApi:
            def list_repo_refs(self, repo):
                return types.SimpleNamespace(
                    branches=[types.SimpleNamespace(name=n) for n in hub.files_of])

            def model_info(self, repo, revision, files_metadata):
                assert files_metadata
                return types.SimpleNamespace(siblings=[
                    types.SimpleNamespace(rfilename=n, size=s) for n, s in hub.files_of[revision]])
        self.HfApi = HfApi

    def snapshot_download(self, **kw):
        self.downloads.append(kw)
        if kw["revision"] == "step20-tokens2B":
            raise ConnectionError("connection reset")
        return f"{kw['cache_dir']}/models--x--y/snapshots/{kw['revision']}"


class Command(unittest.TestCase):
    files = [("config.json", 100), ("model.safetensors", 4000), ("README.md", 5)]

    def run_command(self, hub, *argv):
        out = io.StringIO()
        rc = fr.run(fr.parse_args(["--repo", "x/y", "--cache-dir", "/c", *argv]), hub, out)
        return rc, out.getvalue()

    def test_dry_run_fetches_nothing(self):
        hub = Hub({"main": self.files, "step0-tokens0": self.files, "step10-tokens1B": self.files,
                   "step20-tokens2B": self.files})
        rc, out = self.run_command(hub, "--steps", "10:", "--dry-run")
        self.assertEqual(rc, 0)
        self.assertEqual(hub.downloads, [])
        self.assertIn("step10-tokens1B: 2 files, 4.0 KiB (4100 bytes)", out)
        self.assertIn("total: 2 revisions, 4 files, 8.0 KiB (8200 bytes)", out)
        self.assertNotIn("step0-tokens0", out)
        rc, out = self.run_command(hub, "--list")
        self.assertEqual((rc, hub.downloads), (0, []))
        self.assertIn("3 revisions", out)

    def test_download_and_failures(self):
        hub = Hub({"step0-tokens0": self.files, "step10-tokens1B": [("config.json", 1)],
                   "step20-tokens2B": self.files})
        rc, out = self.run_command(hub, "--all")
        self.assertEqual(rc, 1)
        self.assertEqual([d["revision"] for d in hub.downloads], ["step0-tokens0", "step20-tokens2B"])
        self.assertEqual(hub.downloads[0], {"repo_id": "x/y", "revision": "step0-tokens0",
                                            "cache_dir": "/c", "allow_patterns": fr.PATTERNS})
        self.assertIn("[2/3] step10-tokens1B: skipped (no .safetensors weights)", out)
        self.assertIn("[3/3] step20-tokens2B: FAILED: cannot reach the HuggingFace hub", out)
        self.assertIn("hub_cache = /c\nrepo = x/y", out)
        self.assertIn("2 of 3 revisions not fetched: step10-tokens1B, step20-tokens2B", out)
        with self.assertRaisesRegex(fr.UsageError, "choose revisions"):
            self.run_command(hub)


class Messages(unittest.TestCase):
    def script(self, package_source, *argv):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "huggingface_hub.py"), "w") as f:
                f.write(package_source)
            env = dict(os.environ, PYTHONPATH=d)
            p = subprocess.run([sys.executable, SCRIPT, "--repo", "allenai/OLMo-7B", *argv],
                               env=env, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr + p.stdout

    def test_no_huggingface_hub(self):
        rc, out = self.script("raise ImportError('No module named huggingface_hub')", "--list")
        self.assertEqual(rc, 2, out)
        self.assertIn("the Python package huggingface_hub is missing", out)
        self.assertIn("pip install huggingface_hub", out)

    def test_hub_not_reachable(self):
        rc, out = self.script(
            "class ConnectError(Exception):\n    pass\n"
            "class HfApi:\n    def list_repo_refs(self, repo):\n"
            "        raise ConnectError('[Errno -3] Temporary failure in name resolution')\n",
            "--list")
        self.assertEqual(rc, 2, out)
        self.assertIn("cannot reach the HuggingFace hub (ConnectError: [Errno -3]", out)

    def test_unknown_repository(self):
        rc, out = self.script(
            "class RepositoryNotFoundError(Exception):\n    pass\n"
            "class HfApi:\n    def list_repo_refs(self, repo):\n"
            "        raise RepositoryNotFoundError('404 Client Error')\n", "--list")
        self.assertEqual(rc, 2, out)
        self.assertIn("repository allenai/OLMo-7B is not on the hub or not open to you", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
