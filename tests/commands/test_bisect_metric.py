"""bisect's verdict on each step, by medians (``--metric time``) or by instruction counts at the
gate's margin (``--metric instructions``), from canned figures: no build, no run."""

import os
import subprocess
import sys
import types

import pytest

from conftest import ROOT
from torch_overhead.commands import bisect

COUNTS = "instruction_count.InstructionCount.track_instructions(False, False, False, False)"
MEDIANS = "runtime_overhead.RuntimeOverhead.time_add1(False, False, False, False)"


def repo_with_commits(path, n):
    """A git repository of ``n`` commits; returns their hashes, oldest first."""
    run = lambda *args: subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True)  # noqa: E731
    run("init", "-q")
    for i in range(n):
        run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", f"commit {i}")
    return run("rev-list", "--reverse", "HEAD").stdout.split()


class Canned(bisect.Bisect):
    """Every commit's figure from a table instead of a build; the search and verdicts are bisect's."""

    figures = {}

    def measure(self, commit):
        return "canned", {"value": self.figures[commit]}


@pytest.mark.parametrize("metric, bench, good, unchanged, slower, line", [
    # +0.05% is noise-free but below the threshold; the 5th commit adds 1.7% to every call.
    ("instructions", COUNTS, 200_000, 200_100, 203_400,
     "203,400 instructions vs good 200,000 instructions, ratio 1.017 (threshold 1.015)"),
    # Medians: +2.5% is within the default 10%; the 5th commit adds 15%.
    ("time", MEDIANS, 20.0, 20.5, 23.0, "23.00 us vs good 20.00 us, ratio 1.150 (threshold 1.1)"),
])
def test_each_step_is_decided_at_the_metric_s_threshold(tmp_path, capsys, metric, bench, good, unchanged, slower,
                                                        line):
    commits = repo_with_commits(tmp_path, 8)
    first, rest = commits[0], commits[1:]
    Canned.figures = {first: good, **{c: unchanged for c in rest[:4]}, **{c: slower for c in rest[4:]}}
    args = types.SimpleNamespace(checkout=str(tmp_path), bench=bench, metric=metric, config="asv.conf.json",
                                 project_root=str(tmp_path), state=str(tmp_path / "state.json"), max_steps=None,
                                 threshold=bisect.METRICS[metric][1], good_python=None)
    conf = types.SimpleNamespace(results_dir="results")
    assert Canned(args, conf, first, rest[-1], rest, "m").run() == 0
    out = capsys.readouterr().out
    assert f"first bad commit: {rest[4]}" in out
    assert line in out


def test_a_time_benchmark_under_the_count_metric_is_refused():
    out = subprocess.run([sys.executable, "-m", "torch_overhead", "bisect", "HEAD~1", "HEAD", "--metric", "instructions",
                          "--bench", "runtime_overhead.RuntimeOverhead.time_add1(False, False, False, False)",
                          "--checkout", ROOT, "--config", "asv.conf.json"],
                         capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "not a figure of --metric instructions" in out.stderr
