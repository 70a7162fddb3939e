"""The gate over recorded results: ok, out of margin both ways, failed, bad input."""

import csv
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import ROOT


@pytest.fixture
def project(recorded_results):
    return recorded_results


def gate(project, *args):
    return subprocess.run([sys.executable, "-m", "torch_overhead", "gate", "--machine", "ci-cpu",
                           "--project-root", project, *args], capture_output=True, text=True, timeout=120)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_gate_passes_on_its_own_baseline_and_fails_both_ways(project, tmp_path):
    expected = str(tmp_path / "expected.csv")
    assert gate(project, "--init", expected, "--margin", "0.1").returncode == 0
    baseline = rows(expected)
    base = "runtime_overhead.RuntimeOverhead.time_add1(False, False, False, False)"
    assert base in {r["benchmark"] for r in baseline} and all(r["metric"] == "us_per_call" for r in baseline)
    assert gate(project, "--expected", expected, "--build", f"torch-{torch.__version__}").returncode == 0

    # a baseline at half the measured value: the run is a regression; at double, an improvement
    for factor, status in ((0.5, "regression"), (2.0, "improvement")):
        edited = [dict(r, expected=str(float(r["expected"]) * factor)) if r["benchmark"] == base else r
                  for r in baseline]
        with open(expected, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(baseline[0]))
            writer.writeheader()
            writer.writerows(edited)
        report = str(tmp_path / "report.md")
        result = gate(project, "--expected", expected, "--report", report)
        assert result.returncode == 1, result.stdout + result.stderr
        with open(report) as f:
            text = f.read()
        assert f"`{base}`" in text and f"| {status} |" in text
        suggested = {r["benchmark"]: float(r["expected"]) for r in rows(str(tmp_path / "expected.suggested.csv"))}
        original = {r["benchmark"]: float(r["expected"]) for r in baseline}
        assert suggested[base] == pytest.approx(original[base], abs=0.01)  # the measured value


def test_a_benchmark_without_result_exits_2(project, tmp_path):
    expected = tmp_path / "expected.csv"
    expected.write_text("benchmark,metric,expected,noise_margin\nlayers.Gone.time_add1(False),us_per_call,10,0.1\n")
    result = gate(project, "--expected", str(expected))
    assert result.returncode == 2 and "| failed |" in result.stdout


def test_bad_input_is_one_line_and_exit_2(project, tmp_path):
    bad = tmp_path / "expected.csv"
    bad.write_text("benchmark,metric,expected,noise_margin\nx,us_per_call,abc,0.1\n")
    for args, message in (((("--expected", str(bad))), "expected.csv:2: expected"),
                          (("--expected", str(bad), "--build", "9.9.9"), "not in builds.json")):
        result = gate(project, *args)
        assert result.returncode == 2 and message in result.stderr


def test_asv_compare_names_builds_by_version(project):
    """Two recorded builds compared by torch version through the build-index repository."""
    import json

    other = "b" * 40
    with open(os.path.join(project, "builds.json")) as f:
        index = json.load(f)
    index["builds"].append({"commit": other, "version": "2.99.0", "date": "2030-01-01T00:00:00+00:00",
                            "channel": "release"})
    with open(os.path.join(project, "builds.json"), "w") as f:
        json.dump(index, f)
    machine_dir = os.path.join(project, "results", "ci-cpu")
    (source,) = [p for p in os.listdir(machine_dir) if p != "machine.json"]
    with open(os.path.join(machine_dir, source)) as f:
        data = json.load(f)
    data["commit_hash"] = other
    with open(os.path.join(machine_dir, other[:8] + source[8:]), "w") as f:
        json.dump(data, f)
    shutil.copy(os.path.join(ROOT, "asv.conf.json"), project)
    result = subprocess.run([sys.executable, "-m", "asv", "compare", f"torch-{torch.__version__}", "torch-2.99.0",
                             "--machine", "ci-cpu"],
                            cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # same figures under both names: every row is there, unchanged (ratio 1.00)
    assert "runtime_overhead.RuntimeOverhead.time_add1(False, False, False, False)" in result.stdout
    assert "1.00" in result.stdout and "bbbbbbbb" in result.stdout
    unknown = subprocess.run([sys.executable, "-m", "asv", "compare", "torch-3.0.0", "torch-2.99.0",
                              "--machine", "ci-cpu"], cwd=project, capture_output=True, text=True, timeout=120)
    assert unknown.returncode != 0 and "torch-3.0.0" in unknown.stdout + unknown.stderr


def test_gate_sensitivity_flags_an_injected_overhead():
    """The minimum-detectable-change tool end to end: a real baseline run, then a run whose
    compiled calls each spin for twice the baseline median (torch_overhead/validation/inject): the
    measured change and the gate's verdict come from real recorded results."""
    result = subprocess.run([sys.executable, "-m", "torch_overhead", "gate-sensitivity", "--baselines", "1",
                             "--levels", "200", "--attribute", "rounds=1"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("injected")]
    # each call spins for the injected time, so noise can only lengthen it; the change relative
    # to a baseline can shrink when the baseline ran in a slow spell
    found = re.search(r"\( *([\d.]+) us\): measured +([\d.]+) us", line)
    assert found, line
    injected_us, measured_us = map(float, found.groups())
    assert measured_us >= injected_us and line.endswith("gate: regression"), line
    assert "minimum detectable change: 200.0%" in result.stdout


def test_gate_sensitivity_claims_nothing_when_a_control_run_is_flagged(monkeypatch, capsys):
    """Level 0 is a control: nothing injected. A control that drifts past the margin (one
    baseline alone sets a 0.5% margin, which a control run met once in CI) is a false alarm;
    then the 200% level's flag may be drift too, and no minimum detectable change is claimed.
    The recorded medians are given (the end-to-end recording is the test above); the margin,
    the gate's verdicts and the claim are the tool's own."""
    from torch_overhead.__main__ import parse
    from torch_overhead.validation import gate_sensitivity

    medians = iter([10.0, 10.3, 30.0])  # baseline, control (+3%), 200% level
    monkeypatch.setattr(gate_sensitivity, "_record", lambda *args: next(medians))
    monkeypatch.setattr(gate_sensitivity.main_command, "copy_project", lambda src, dest: None)
    args = parse(["gate-sensitivity", "--baselines", "1", "--levels", "0,200"])
    assert gate_sensitivity.main(args) == 1
    out = capsys.readouterr().out
    assert "noise margin 0.5% from 1 baseline runs" in out
    (control,) = [x for x in out.splitlines() if x.startswith("injected   0.0%")]
    assert control.endswith("gate: regression"), control
    assert "no minimum detectable change: 1 of 1 runs with nothing injected were flagged" in out
    assert "minimum detectable change: 200" not in out


def test_gate_sensitivity_never_claims_a_level_below_the_noise_margin():
    """A level under the margin is flagged only when drift adds the rest: on a noisy host (margin
    45%) the 8% and 12% levels read +85% and +64% and were once claimed as detectable."""
    from torch_overhead.validation.gate_sensitivity import minimum_detectable

    levels = [0, 1, 2, 3, 5, 8, 12]
    noisy = {0: False, 1: True, 2: False, 3: True, 5: False, 8: True, 12: True}
    assert minimum_detectable(levels, noisy, margin=0.45) is None
    quiet = {0: False, 1: False, 2: False, 3: False, 5: True, 8: True, 12: True}
    assert minimum_detectable(levels, quiet, margin=0.025) == 5
    # flagged from 3% on, but 3% is under a 4% margin: the claim starts at the margin
    assert minimum_detectable(levels, {**quiet, 3: True}, margin=0.04) == 5


HEADER = "benchmark,metric,expected,noise_margin\n"
BASE_ROW = '"runtime_overhead.RuntimeOverhead.time_add1(False, False, False, False)",us_per_call,'


@pytest.mark.parametrize("text, message", [
    ("", "no column benchmark, metric, expected, noise_margin"),
    (HEADER, "has no rows to check"),
    ("bench,metric,expected,noise_margin\n" + BASE_ROW + "20,0.1\n", "no column benchmark;"),
    (HEADER + BASE_ROW + "nan,0.1\n", "expected 'nan': give a finite value above 0"),
    (HEADER + BASE_ROW + "inf,0.1\n", "expected 'inf': give a finite value above 0"),
    (HEADER + BASE_ROW + "20,inf\n", "noise_margin 'inf': give a fraction between 0 and 1"),
    (HEADER + BASE_ROW + "20,-0.1\n", "noise_margin '-0.1': give a fraction between 0 and 1"),
    (HEADER + BASE_ROW + "20,0\n", "noise_margin '0': give a fraction between 0 and 1"),
])
def test_an_expected_file_with_nothing_usable_to_check_is_refused(project, tmp_path, text, message):
    """It was green: "0 of 0 within margin", or "75 of 75" against nan; exit 0."""
    expected = tmp_path / "expected.csv"
    expected.write_text(text)
    result = gate(project, "--expected", str(expected))
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert message in line and "within margin" not in result.stdout


def test_a_byte_order_mark_is_read_as_a_spreadsheet_writes_it(project, tmp_path):
    expected = str(tmp_path / "expected.csv")
    assert gate(project, "--init", expected).returncode == 0
    with open(expected, "rb") as f:
        text = f.read()
    with open(expected, "wb") as f:
        f.write(b"\xef\xbb\xbf" + text)
    result = gate(project, "--expected", expected)
    assert result.returncode == 0, result.stderr
    assert f"{len(rows(expected))} of {len(rows(expected))} within margin" in result.stdout


@pytest.mark.parametrize("option", ["--report", "--init", "--suggest"])
def test_writing_into_a_missing_folder_is_one_line(project, tmp_path, option):
    expected = str(tmp_path / "expected.csv")
    assert gate(project, "--init", expected).returncode == 0
    edited = [dict(r, expected=str(float(r["expected"]) / 2)) for r in rows(expected)]  # out of margin: suggests
    with open(expected, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(edited[0]))
        writer.writeheader()
        writer.writerows(edited)
    missing = str(tmp_path / "no" / "such" / "out.csv")
    args = ["--init", missing] if option == "--init" else ["--expected", expected, option, missing]
    result = gate(project, *args)
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert f"cannot write {missing}" in line and "Traceback" not in result.stderr


def test_gate_against_a_baseline_build_run_beside_fails_on_a_slower_variant(tmp_path):
    """``--baseline-python``: no stored number, a paired comparison run now. Side B is this
    interpreter through a wrapper that adds 2 ms to every compiled call (the gate-sensitivity
    injection, in asv's forkserver only); the gate says slower and exits 1."""
    from conftest import make_project
    project = make_project(tmp_path / "project")
    inject = os.path.join(ROOT, "torch_overhead", "validation", "inject")
    slower = tmp_path / "python-slower"
    slower.write_text(f'#!/bin/sh\nTORCH_OVERHEAD_INJECT_US=2000 PYTHONPATH="{inject}:$PYTHONPATH" '
                      f'exec {sys.executable} "$@"\n')
    slower.chmod(0o755)
    report = tmp_path / "gate.md"
    done = subprocess.run(
        [sys.executable, "-m", "torch_overhead", "gate", "--project-root", str(project), "--machine", "ci",
         "--device", "cpu", "--baseline-python", sys.executable, "--python", str(slower),
         "--bench", r"^layers\.DynamoEager\.time_add1\(False, False, False, False\)", "--jobs", "2",
         "--cpu-affinity", "0,1", "--attribute", "repeat=5", "--attribute", "warmup_time=0.05",
         "--budget-seconds", "3000", "--report", str(report)],
        capture_output=True, text=True, env=dict(os.environ, HOME=str(project)), timeout=1200)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 slower, 0 unknown of 1" in done.stdout
    assert "| slower |" in report.read_text()
