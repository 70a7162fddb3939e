"""Bisect end to end on a stand-in PyTorch checkout (tests/torch_standin.py): real builds of
the stand-in, real asv runs of the headline, real torch settings that add real overhead."""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import committed, ctrl_c, one_error_line, terminal_job
from torch_standin import COUNT_THRESHOLD, OVERHEAD_SUBJECT, StandIn, build, builds_log, git

@pytest.fixture
def standin(tmp_path):
    return StandIn(tmp_path)


def test_bisect_names_the_overhead_commit_skips_a_broken_build_and_resumes(standin):
    """Decided by instruction counts: the search, the skip, the pause, the resume and the reuse
    are what this tests, and medians recorded minutes apart on the CI machine read an unchanged
    commit past any threshold the overhead commit clears (docs/testing.md)."""
    c = standin.commits
    main = c["main"]

    # Paused after 3 builds: both endpoints measured, the first midpoint fails to build.
    first = standin.bisect("--max-steps", "3", metric="instructions")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr
    assert "paused after 3 builds" in first.stderr
    assert builds_log(standin.overlay) == [c["good"], c["bad"], c["broken"]]
    assert f"{c['broken'][:12]} Break the build: skipped (build failed (exit 1): SyntaxError" in first.stdout
    state = json.load(open(standin.state))
    assert set(state["tested"]) == {c["good"], c["bad"], c["broken"]}
    assert set(standin.recorded()) == {c["good"], c["bad"]}
    recorded_before = standin.recorded()

    # Resumed: nothing built twice, nothing re-measured; then main[2], main[4] (good) and
    # the overhead commit (bad): 4 builds between the endpoints for 8 commits.
    second = standin.bisect(metric="instructions")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert "resuming from" in second.stdout
    assert builds_log(standin.overlay) == [c["good"], c["bad"], c["broken"], main[2], main[4], c["overhead"]]
    for commit in (c["good"], c["bad"]):
        assert standin.recorded()[commit] == recorded_before[commit]
        assert re.search(rf"{commit[:12]} .*\(from the state file\)", second.stdout)
    assert f"first bad commit: {c['overhead']}" in second.stdout
    ratio = float(re.search(rf"{re.escape(OVERHEAD_SUBJECT)}: .* instructions, ratio ([0-9.]+) "
                            rf"\(threshold {COUNT_THRESHOLD}\)", second.stdout).group(1))
    assert ratio >= float(COUNT_THRESHOLD)
    assert (f"4 builds between the endpoints for 8 commits in good..bad (ceil(log2(8)) = 3; "
            f"1 skipped: {c['broken'][:12]})") in second.stdout
    assert set(standin.recorded()) == {c["good"], c["bad"], main[2], main[4], c["overhead"]}

    # Without the state file, recorded results are read back: only the failed build is redone.
    os.remove(standin.state)
    third = standin.bisect(metric="instructions")
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr
    assert f"first bad commit: {c['overhead']}" in third.stdout
    assert builds_log(standin.overlay)[6:] == [c["broken"]]
    assert third.stdout.count("(recorded earlier, reused)") == 5


def test_paired_bisect_decides_each_step_against_good_s_build_run_beside(standin, tmp_path):
    """``--good-python``: GOOD's build kept in an interpreter of its own (here the stand-in built
    into a second overlay, behind a wrapper script), and each step a paired comparison against
    it in one run: the unchanged commit is good (same), the overhead commit bad (slower). GOOD
    itself is never built in the checkout."""
    c = standin.commits
    good, bad = c["main"][1], c["main"][6]
    overlay = tmp_path / "good-overlay"
    overlay.mkdir()
    build(standin.repo, good, overlay)
    git(standin.repo, "checkout", "-q", "main")
    python = tmp_path / "good-python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{overlay}:$PYTHONPATH" exec {sys.executable} "$@"\n')
    python.chmod(0o755)

    result = standin.bisect("--good-python", str(python), "--threshold", "1.5", "--budget-seconds", "900",
                            "--attribute", "repeat=5", "--attribute", "warmup_time=0.05", good=good, bad=bad)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert f"first bad commit: {c['overhead']}" in result.stdout
    tested = json.load(open(os.path.join(standin.project, ".asv", f"bisect-{good[:12]}-{bad[:12]}.json")))["tested"]
    verdicts = {commit: entry.get("verdict", "skipped") for commit, entry in tested.items()}
    assert verdicts[bad] == verdicts[c["overhead"]] == "slower", result.stdout[-3000:]
    assert tested[c["overhead"]]["value"] > 1.5
    unchanged = [commit for commit, verdict in verdicts.items() if verdict == "same"]
    assert unchanged and set(unchanged) <= {c["main"][2], c["main"][4]}, result.stdout[-3000:]
    assert re.search(rf"{unchanged[0][:12]} .*: B/A [0-9.]+ against good's build: same \(paired.* -> good", result.stdout)
    assert set(verdicts) - {c["broken"]} == {bad, c["overhead"], *unchanged}
    assert good not in builds_log(standin.overlay)


def test_ctrl_c_exits_130_and_keeps_the_state(standin):
    proc = terminal_job(standin.command(standin.commits["good"], standin.commits["bad"], build="sleep 60"),
                        standin.env())
    for line in proc.stdout:
        if "building" in line:
            break
    ctrl_c(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; state kept in" in one_error_line(subprocess.CompletedProcess([], 130, "", err))
    state = json.load(open(standin.state))
    assert state["bisect"]["good"] == standin.commits["good"] and state["tested"] == {}


def test_bad_input(standin, tmp_path):
    c = standin.commits
    plain = tmp_path / "plain"
    plain.mkdir()
    committed(standin.project, "results/benchmarks.json")
    cases = [
        (dict(args=("--bench", "runtime_overhead.RuntimeOverhead.time_add1(False)")),
         "--bench 'runtime_overhead.RuntimeOverhead.time_add1(False)' matches 0 benchmark variants"),
        (dict(args=("--checkout", str(plain))), "is not a git work tree"),
        (dict(good="v0.0-nonexistent"), "unknown commit 'v0.0-nonexistent'"),
        (dict(good=c["bad"], bad=c["good"]), "is not an ancestor of bad"),
        (dict(args=("--threshold", "0.9")), "give a ratio above 1"),
        (dict(good=c["broken"]), f"good {c['broken'][:12]} cannot be measured: build failed (exit 1)"),
        (dict(build="exit 3"), f"good {c['good'][:12]} cannot be measured: build failed (exit 3)"),
        (dict(args=("--good-python", sys.executable, "--metric", "instructions")), "counts need no paired comparison"),
        (dict(args=("--good-python", sys.executable)), "with --good-python: give a ratio between 1 and 2"),
        (dict(args=("--good-python", sys.executable, "--threshold", "1.5")),
         f"not good {c['good'][:12]}: give an interpreter with good's build"),
    ]
    for case, message in cases:
        result = standin.bisect(*case.get("args", ()), good=case.get("good"), bad=case.get("bad"),
                                build=case.get("build"))
        assert result.returncode == 2, (case, result.stderr)
        assert message in one_error_line(result), (case, result.stderr)
    assert standin.recorded() == {}

    with open(os.path.join(standin.repo, "settings.py"), "a") as f:
        f.write("# local edit\n")
    result = standin.bisect()
    assert result.returncode == 2 and "has uncommitted changes" in one_error_line(result)
    git(standin.repo, "checkout", "--", "settings.py")

    with open(standin.state, "w") as f:
        json.dump({"version": 1, "bisect": {"good": "another"}, "tested": {}}, f)
    result = standin.bisect()
    assert result.returncode == 2 and "holds another bisect" in one_error_line(result)
    assert standin.recorded() == {}
