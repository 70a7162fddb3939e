"""Instruction counts through the tools: the gate's instruction_count rows and the counts table,
on the committed H200 counts (real CUDA figures, recorded with the valgrind kit)."""

import csv
import subprocess
import sys

from conftest import committed, make_project, run_main, snapshot

COUNTS = "instruction_count.InstructionCount.track_instructions"
BASE = COUNTS + "(False, False, False, False)"


def tool(project, *args):
    return subprocess.run([sys.executable, "-m", "torch_overhead", *args, "--project-root", project],
                          capture_output=True, text=True, timeout=120)


def count_rows(path):
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r["metric"] == "instruction_count"]


def write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["benchmark", "metric", "expected", "noise_margin"])
        writer.writeheader()
        writer.writerows(rows)


def test_gate_checks_counts_at_their_margin_and_flags_two_percent(tmp_path):
    project = committed(tmp_path, "results", "builds.json")
    expected = str(tmp_path / "expected.csv")
    assert tool(project, "gate", "--machine", "nvidia-h200", "--init", expected).returncode == 0
    rows = count_rows(expected)
    # the headline's 10 variants and the layers' 47 (eager 5, Dynamo, AOTAutograd, CUDA graphs and the
    # C++ wrapper 10 each, the floor 2)
    assert sum(r["benchmark"].startswith(COUNTS + "(") for r in rows) == 10 and BASE in {r["benchmark"] for r in rows}
    assert len(rows) == 10 + 47
    assert {r["noise_margin"] for r in rows} == {"0.015"}
    write(expected, rows)
    result = tool(project, "gate", "--machine", "nvidia-h200", "--expected", expected)
    assert result.returncode == 0, result.stdout + result.stderr  # its own baseline: no row out of margin

    # Every call 1% dearer than expected stays within the margin; 2% dearer is flagged, each row.
    for factor, status, code in ((1.01, "ok", 0), (1.02, "regression", 1)):
        write(expected, [dict(r, expected=f"{float(r['expected']) / factor:.0f}") for r in rows])
        report = str(tmp_path / "report.md")
        result = tool(project, "gate", "--machine", "nvidia-h200", "--expected", expected, "--report", report)
        assert result.returncode == code, result.stdout + result.stderr
        if status == "regression":
            with open(report) as f:
                assert f.read().count("| regression |") == len(rows)


def test_counts_table_sets_the_h200_counts_beside_the_seeds(tmp_path):
    project = committed(tmp_path, "results", "builds.json")
    out = tool(project, "table", "--machine", "nvidia-h200", "--metric", "instructions")
    assert out.returncode == 0, out.stderr
    base = next(line for line in out.stdout.splitlines() if line.startswith("| base |")).split(" | ")
    calling, seed, ratio = float(base[1].replace(",", "")), float(base[3].replace(",", "")), float(base[4].rstrip(" |"))
    assert seed == 222_645 and abs(calling / seed - ratio) < 0.006
    assert "| requires_grad+inference_mode | " in out.stdout and out.stdout.count("| n/a |") >= 2


def test_a_valgrind_variable_naming_nothing_is_one_error_line_before_anything_runs(tmp_path):
    project = make_project(str(tmp_path / "project"))
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", env={"TORCH_OVERHEAD_VALGRIND": str(tmp_path / "no-valgrind")})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "TORCH_OVERHEAD_VALGRIND=" in result.stderr
    assert "[1/5]" not in result.stdout and snapshot(project) == before
