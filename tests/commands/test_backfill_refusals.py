"""backfill refuses a bad machine name or --bench before its first download (gigabytes), and an
unreadable suite listing in one line."""

import shutil
import subprocess
import sys

import pytest
import torch

from conftest import make_project, snapshot
from torch_overhead.commands import backfill


@pytest.mark.parametrize("args, message", [
    (["--machine", "../escaped"], "a machine name is letters, digits"),
    (["--bench", "("], "--bench '(' is not a valid regular expression"),
])
def test_bad_options_before_any_download(tmp_path, args, message):
    project = make_project(tmp_path / "project")
    result = subprocess.run([sys.executable, "-m", "torch_overhead", "backfill", "2.13.0", *args,
                             "--project-root", project], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert message in line and "=== build" not in result.stdout
    assert snapshot(project) == {}


def test_an_unreadable_suite_listing_is_a_build_error(recorded_project, tmp_path):
    project = str(tmp_path / "project")
    shutil.copytree(recorded_project[0], project, ignore=shutil.ignore_patterns("html", ".asv"))
    with open(f"{project}/results/benchmarks.json", "w") as f:
        f.write("{")
    with pytest.raises(backfill.BuildSpecError, match="benchmarks.json is unreadable"):
        backfill.still_to_run(project, "ci-cpu", torch.version.git_version, ["runtime_overhead"])
