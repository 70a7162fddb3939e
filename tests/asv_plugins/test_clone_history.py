"""History against a PyTorch clone (asv.conf.clone.json), on the stand-in checkout: a main-branch
build and a nightly recorded, then plain `asv publish` and `asv compare` over both."""

import glob
import json
import math
import os
import re
import subprocess
import sys

from torch_standin import FAST, StandIn, build

BASE = "runtime_overhead.RuntimeOverhead.time_add1(False, False, False, False)"
BENCH = "^" + re.escape(BASE) + "$"


def asv(standin, *args, env=None):
    return subprocess.run([sys.executable, "-m", "asv", *args, "--config", "asv.conf.clone.json"],
                          cwd=standin.project, capture_output=True, text=True, env=env or standin.env(), timeout=600)


def graph_points(standin, branch):
    """``{commit: value}`` of the base variant on one branch's published graph."""
    html = os.path.join(standin.project, "html-clone")
    revisions = json.load(open(os.path.join(html, "index.json")))["revision_to_hash"]
    (path,) = glob.glob(os.path.join(html, "graphs", "**", f"branch-{branch}", "**",
                                     "runtime_overhead.RuntimeOverhead.time_add1.json"), recursive=True)
    return {revisions[str(revision)]: values[0] for revision, values in json.load(open(path))}


def test_main_and_nightly_builds_publish_and_compare_by_clone_commit(tmp_path):
    standin = StandIn(tmp_path)
    main, nightly = standin.commits["main"][1], standin.commits["nightly"][1]

    # A main-branch build, recorded by the main command under the clone config.
    build(standin.repo, main, standin.overlay)
    run = subprocess.run(
        [sys.executable, "-m", "torch_overhead", "run", "--config", "asv.conf.clone.json", "--project-root",
         standin.project, "--machine", "ci-cpu", "--device", "cpu", "--bench", BENCH, *FAST],
        capture_output=True, text=True, env=standin.env(), timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert f"commit {main[:12]} is in the clone" in run.stdout
    assert f"For torch commit {main[:8]} <main~" in run.stdout  # asv's progress line: the measured build
    assert not os.path.exists(os.path.join(standin.project, "builds.json"))  # history is the clone's

    # A nightly (a commit of the nightly branch naming main[6]), recorded by plain asv run.
    build(standin.repo, nightly, standin.overlay)
    env = dict(standin.env(), TORCH_OVERHEAD_DEVICE="cpu")
    recorded = asv(standin, "run", "--machine", "ci-cpu", "-E", f"installed-torch:{sys.executable}",
                   "--set-commit-hash", nightly, "--steps", "1", "--bench", BENCH,
                   "-a", "repeat=5", "-a", "rounds=1", "--cpu-affinity", "0", env=env)
    assert recorded.returncode == 0, recorded.stdout[-3000:] + recorded.stderr
    assert "Running 1 total benchmarks (1 commits" in recorded.stdout

    published = asv(standin, "publish")
    assert published.returncode == 0, published.stdout[-3000:] + published.stderr
    on_main, on_nightly = graph_points(standin, "main"), graph_points(standin, "nightly")
    assert list(on_main) == [main] and list(on_nightly) == [nightly]
    assert 0 < on_main[main] < 1e-3 and 0 < on_nightly[nightly] < 1e-3

    compared = asv(standin, "compare", "--machine", "ci-cpu", main[:10], nightly[:10])
    assert compared.returncode == 0, compared.stderr
    (row,) = [line for line in compared.stdout.splitlines() if BASE in line]
    assert f"Before [{main[:8]}] <main~6>" in compared.stdout and f"After [{nightly[:8]}] <nightly>" in compared.stdout
    assert math.isfinite(float(row.split("|")[4].strip(" ~"))), row  # a ratio: both sides have a value
