"""steps: build-to-build steps per variant and layer, read from the committed results."""

import subprocess
import sys

import pytest
from conftest import committed, make_project

from torch_overhead.commands.steps import against, between, steps
from torch_overhead.lib.recorded import RecordedResultsError
from torch_overhead.lib.suite import settings


def test_steps_skip_builds_without_a_figure():
    versions = ["2.1.2", "2.2.2", "2.3.1", "2.4.1"]
    assert steps(versions, [100.0, None, 150.0, 75.0]) == [
        (1.5, "2.1.2", "2.3.1", 100.0, 150.0), (0.5, "2.3.1", "2.4.1", 150.0, 75.0)]
    assert steps(versions, [None, 1.0, None, None]) == []
    assert settings.flags_name((True, False, True, False)) == "requires_grad+backward"
    assert settings.flags_name((False, False, False, False)) == "base"


def run_steps(project, *args):
    return subprocess.run([sys.executable, "-m", "torch_overhead", "steps", "--project-root", project, *args],
                          capture_output=True, text=True, timeout=300)


def test_steps_of_the_committed_history_and_its_picture(tmp_path):
    project = committed(make_project(tmp_path / "project"), "results", "builds.json")
    picture = str(tmp_path / "steps.png")
    result = run_steps(project, "--machine", "cpu-2core", "--top", "1", "--plot", picture)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("builds with results, oldest first (") and "2.13.0+cpu" in lines[0]
    headline = lines.index("## us per call, Inductor (runtime_overhead.RuntimeOverhead.time_add1): "
                           "the 1 largest steps per variant")
    rows = lines[headline + 1:headline + 11]
    assert len({row.split()[0] for row in rows}) == 10  # one row per valid variant
    assert all(" -> " in row and " x" in row for row in rows), rows
    # the per-layer counts have steps of their own, layer by layer
    dynamo = lines.index("## instructions per call, Dynamo (instruction_count.LayerInstructionCount.track_instructions"
                         "('dynamo')): the 1 largest steps per variant")
    assert any(" -> " in row for row in lines[dynamo + 1:dynamo + 11]), lines[dynamo:dynamo + 11]
    with open(picture, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_machine_without_results_is_one_error_line(tmp_path):
    project = committed(make_project(tmp_path / "project"), "results", "builds.json")
    result = run_steps(project, "--machine", "no-such-machine")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no build of ") and len(result.stderr.splitlines()) == 1


def test_against_sets_two_machines_counts_side_by_side():
    key = "instruction_count.InstructionCount.track_instructions"
    base, dyn = (False,) * 4, (False, False, False, True)
    mine = (["2.4.1", "2.5.1", "2.8.0"], {key: {base: [100.0, 200.0, 150.0], dyn: [10.0, None, 12.0]}})
    theirs = (["2.5.1", "2.8.0"], {key: {base: [196.0, 150.0], dyn: [11.0, 12.0]}})
    lines = against(mine, theirs, "host-a", "host-b")
    assert lines[0] == "builds recorded on both host-a and host-b (2): 2.5.1, 2.8.0"
    ratios = lines.index("## instructions per call, Inductor: host-a / host-b")
    assert lines[ratios + 2].split() == ["base", "1.0204", "1.0000"]
    assert lines[ratios + 3].split() == ["dynamic", "-", "1.0000"]
    assert lines[-2] == ("3 figures: median |1 - ratio| 0.00%, largest 2.04%, "
                         "2 within the gate's 1.5% margin for counts")
    # the one step both machines measured: x0.750 here, x0.765 there
    assert "2.5.1->2.8.0 x0.750|x0.765" in lines[-4]
    assert lines[-1] == "1 steps: the two machines' step ratios differ by median 2.00%, largest 2.00%"


def test_a_machine_against_itself_agrees_exactly(tmp_path):
    project = committed(make_project(tmp_path / "project"), "results", "builds.json")
    result = run_steps(project, "--machine", "cpu-2core", "--against", "cpu-2core")
    assert result.returncode == 0, result.stderr
    summary = [line for line in result.stdout.splitlines() if " figures: median |1 - ratio| " in line]
    assert len(summary) == 1 and summary[0].split(" figures:")[0] == summary[0].split(", ")[-1].split()[0]
    assert "median |1 - ratio| 0.00%, largest 0.00%" in summary[0]
    bad = run_steps(project, "--machine", "cpu-2core", "--against", "no-such-machine")
    assert bad.returncode == 2 and bad.stderr.startswith("error: no build of ")


def test_between_gives_every_variant_and_layer_one_cell():
    headline = "instruction_count.InstructionCount.track_instructions"
    dynamo = "instruction_count.LayerInstructionCount.track_instructions('dynamo')"
    base, dyn = (False,) * 4, (False, False, False, True)
    versions = ["2.12.1+cu130", "2.13.0+cpu", "2.14.1+cu130"]
    table = {headline: {base: [100.0, 150.0, 120.0], dyn: [200.0, None, 100.0]},
             dynamo: {base: [80.0, 90.0, 60.0]}}
    lines = between(versions, table, "2.12.1", "2.14.1+cu130")
    assert lines[0] == "instructions per call, 2.12.1+cu130 -> 2.14.1+cu130: the change per call (the ratio)"
    assert lines[2] == "| variant | Dynamo | Inductor |"
    assert lines[4:] == ["| base | -20 (x0.750) | +20 (x1.200) |", "| dynamic | - | -100 (x0.500) |"]
    assert between(versions, table, "2.12.1", "2.13.0")[5] == "| dynamic | - | - |"  # no figure in 2.13.0
    with pytest.raises(RecordedResultsError, match=r"^--between 2\.99: no build of that version .* recorded: 2\.12\.1"):
        between(versions, table, "2.99", "2.14.1")
