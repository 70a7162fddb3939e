"""steps: build-to-build steps per variant and layer, read from the committed results."""

import subprocess
import sys

from conftest import committed, make_project
from torch_overhead.commands.steps import steps
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
