"""The commands that read recorded results, on corrupt or surprising records: one ``error:`` line and
exit status 2 (never a traceback, never gate's 1, which means "out of margin"), and "the newest
build" read from the build index, never from a file's modification time."""

import json
import os
import subprocess
import sys

import pytest

from torch_overhead.commands import bisect
from torch_overhead.lib import builds
from torch_overhead.lib.recorded import latest_results

HEADLINE = "runtime_overhead.RuntimeOverhead.time_add1"
OTHER = "b" * 40


@pytest.fixture
def project(recorded_results):
    return recorded_results


def results_file(project):
    machine_dir = os.path.join(project, "results", "ci-cpu")
    (name,) = [n for n in os.listdir(machine_dir) if n != "machine.json"]
    return os.path.join(machine_dir, name)


def command(project, *args):
    return subprocess.run([sys.executable, "-m", "torch_overhead", *args, "--machine", "ci-cpu",
                           "--project-root", project], capture_output=True, text=True, timeout=300)


READERS = [["table"], ["breakdown", "--output", "{tmp}/b.png"], ["gate", "--init", "{tmp}/e.csv"]]


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r[0])
@pytest.mark.parametrize("content", ['{"commit_hash": "trunc', "[]", '{"version": 2}'])
def test_a_corrupt_results_file_is_one_line_and_exit_2(project, tmp_path, reader, content):
    path = results_file(project)
    with open(path, "w") as f:
        f.write(content)
    result = command(project, *[a.format(tmp=tmp_path) for a in reader])
    assert result.returncode == 2, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert f"{path} is corrupt" in line and "Traceback" not in result.stderr


@pytest.mark.parametrize("reader", READERS[:2], ids=lambda r: r[0])
def test_newest_results_without_the_headline_is_one_line(project, tmp_path, reader):
    path = results_file(project)
    with open(path) as f:
        data = json.load(f)
    data["results"] = {k: v for k, v in data["results"].items() if not k.startswith("runtime_overhead.")}
    with open(path, "w") as f:
        json.dump(data, f)
    result = command(project, *[a.format(tmp=tmp_path) for a in reader])
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert "record them with `python -m torch_overhead run`" in line and "Traceback" not in result.stderr


def test_the_newest_build_is_the_index_s_newest_never_the_newest_file(project):
    """``touch`` on a results file used to switch which build gate and table read."""
    path = results_file(project)
    with open(path) as f:
        data = json.load(f)
    ours = data["commit_hash"]
    data["commit_hash"] = OTHER
    other_path = os.path.join(os.path.dirname(path), OTHER[:8] + os.path.basename(path)[8:])
    with open(other_path, "w") as f:
        json.dump(data, f)
    index = os.path.join(project, "builds.json")
    builds.register(index, OTHER, "2.0.0", date="2000-01-01T00:00:00+00:00")  # an older build, recorded later
    os.utime(path, (0, 0))  # and its file the oldest on disk
    assert latest_results(project, "ci-cpu").commit_hash == ours
    version = next(b["version"] for b in builds.load(index) if b["commit"] == ours)
    assert command(project, "table").stdout.startswith(f"torch {version} @ {ours[:12]},")

    entries = [dict(b, date="2100-01-01T00:00:00+00:00") if b["commit"] == OTHER else b for b in builds.load(index)]
    builds.save(index, entries)  # now the other build is the newer one
    os.utime(other_path, (0, 0))
    assert latest_results(project, "ci-cpu").commit_hash == OTHER


def test_bisect_refuses_a_corrupt_suite_listing(tmp_path):
    (tmp_path / "benchmarks.json").write_text('{"runtime_overhead.RuntimeOverhead.time_add1": {"params": ')
    with pytest.raises(bisect.BisectError, match="benchmarks.json is unreadable"):
        bisect.check_benchmark(str(tmp_path), HEADLINE)
