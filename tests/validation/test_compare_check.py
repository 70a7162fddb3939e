"""compare-check end to end on the CPU, kept short: one A/A comparison and the injected one, one
cheap variant, one round each. What it must get right is what it runs and how it counts; the
H200's figures are in docs/paired-comparison.md."""

import os
import subprocess
import sys

from conftest import make_project

DYNAMO = r"^layers\.DynamoEager\.time_add1\(False, False, False, False\)"


def test_runs_the_a_a_and_the_injected_comparison_and_prints_the_four_figures(tmp_path):
    project = make_project(tmp_path / "project")
    keep = tmp_path / "keep"
    done = subprocess.run(
        [sys.executable, "-m", "torch_overhead", "compare-check", "--project-root", str(project), "--device", "cpu",
         "--repeats", "1", "--percent", "50", "--budget-seconds", "1", "--bench", DYNAMO, "--cpu-affinity", "1",
         "--attribute", "repeat=5", "--attribute", "warmup_time=0.05", "--keep", str(keep)],
        capture_output=True, text=True, env=dict(os.environ, HOME=str(project)), timeout=900)
    out = done.stdout
    assert done.returncode in (0, 1), out[-3000:] + done.stderr[-3000:]
    assert "A/A 1: " in out and "injected 50%: " in out and "steal" in out
    for figure in ("false alarms", "sensitivity (50% injected: slower)", "cost", "stability"):
        assert figure in out
    assert "of 1" in out.split("false alarms")[1].splitlines()[0]  # one measured variant-comparison
    injected = (keep / "injected-report.md").read_text()
    # No counted variant here: the counting processes' spin stays 0 on both sides.
    assert "side A: " in injected and "TORCH_OVERHEAD_INJECT_FRACTION=0 TORCH_OVERHEAD_INJECT_ITERATIONS=0;" in injected
    assert "TORCH_OVERHEAD_INJECT_FRACTION=0.5 TORCH_OVERHEAD_INJECT_ITERATIONS=0;" in injected
    assert (keep / "aa0-report.md").exists()
    assert not os.path.exists(os.path.join(project, "results", "compare-check-compare"))  # throwaway copies
