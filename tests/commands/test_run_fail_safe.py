"""The main command fails safe: recorded results are never lost, replaced unasked or written
outside results/, and the dashboard is swapped in whole or not at all (issue 20's defects)."""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ctrl_c, one_error_line, results_file, run_main, snapshot, terminal_job
from torch_overhead.lib import dashboard, guard, machine, probe
from torch_overhead.validation.trials import respecting_modes

BASE = r"RuntimeOverhead.time_add1\(False, False, False, False\)"


@pytest.fixture
def project(recorded_project, tmp_path):
    """A copy of a project that already holds a recorded (--quick) run and its dashboard."""
    source, _ = recorded_project
    copy = str(tmp_path / "project")
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".asv"))
    return copy


def html_hashes(project):
    return {path: hashlib.sha256(open(path, "rb").read()).hexdigest()
            for path in glob.glob(os.path.join(project, "html", "**"), recursive=True) if os.path.isfile(path)}


def recorded_file(project):
    (path,) = glob.glob(os.path.join(project, "results", "ci-cpu", "*-*.json"))
    return path


@pytest.mark.parametrize("args, message", [
    (["--machine", "../escaped"], "a machine name is letters, digits"),
    (["--config", "nosuch.json"], "--config nosuch.json: no such file"),
    (["--bench", "("], "--bench '(' is not a valid regular expression"),
    (["--attribute", "rounds=x"], "'rounds': invalid literal"),
    (["--attribute", "colour=red"], "'colour' cannot be set"),
    (["--cpu-affinity", "99"], "CPU 99 not in range"),
])
def test_bad_options_are_refused_before_anything_runs(project, args, message):
    before, html = snapshot(project), html_hashes(project)
    result = run_main(project, "--device", "cpu", "--quick", *args)
    assert result.returncode == 2
    assert message in one_error_line(result)
    assert "[1/5]" not in result.stdout  # refused before the probe
    assert snapshot(project) == before and html_hashes(project) == html
    assert not os.path.exists(os.path.join(os.path.dirname(project), "escaped"))


def test_a_second_run_is_refused_while_one_holds_the_lock(project):
    before = snapshot(project)
    with guard.lock(project):
        result = run_main(project, "--device", "cpu", "--quick", "--bench", BASE, "--replace")
    assert result.returncode == 2
    assert "another run is recording in this checkout" in one_error_line(result)
    assert snapshot(project) == before


def test_two_runs_at_once_record_one_and_refuse_the_other(project):
    """Both started together: before the lock, both exited 0 and one run's results were lost."""
    env = dict(os.environ, HOME=project)
    command = [sys.executable, "-m", "torch_overhead", "run", "--project-root", project, "--machine", "ci-cpu",
               "--device", "cpu", "--quick", "--replace", "--bench", BASE]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = sorted((p.wait(timeout=600), p.stderr.read()) for p in procs)
    assert [status for status, _ in outcomes] == [0, 2], outcomes
    assert "another run is recording" in outcomes[1][1]


def test_a_rerun_never_replaces_recorded_figures_unasked(project):
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick", "--bench", BASE)
    assert result.returncode == 2
    assert "give --replace to replace them" in one_error_line(result)
    assert snapshot(project) == before


def test_quick_never_replaces_a_full_run(project):
    path = recorded_file(project)
    with open(path) as f:
        data = json.load(f)
    repeat = data["result_columns"].index("stats_repeat")
    for row in data["results"].values():  # as a full run records them: 40 samples per variant
        if len(row) > repeat and row[repeat]:
            row[repeat] = [None if r is None else 40 for r in row[repeat]]
    with open(path, "w") as f:
        json.dump(data, f)
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick", "--bench", BASE, "--replace")
    assert result.returncode == 2
    assert "a --quick run never replaces a full one" in one_error_line(result)
    assert snapshot(project) == before


def test_the_recorded_machine_facts_are_kept(project):
    """Another host of the same hardware records under the machine's recorded facts."""
    path = os.path.join(project, "results", "ci-cpu", "machine.json")
    with open(path) as f:
        facts = json.load(f)
    facts.update({"os": "Linux 0.0-other", "ram": "1"})
    with open(path, "w") as f:
        json.dump(facts, f, indent=4, sort_keys=True)
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick", "--bench", "no_such_benchmark_at_all")
    assert result.returncode == 2  # asv ran (and rewrote machine.json from ~/.asv-machine.json), matched nothing
    assert "this host's os, ram differ from machine 'ci-cpu'" in result.stdout
    assert snapshot(project) == before


def test_another_hardware_under_a_recorded_machine_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    os.makedirs(tmp_path / "results" / "m")
    (tmp_path / "results" / "m" / "machine.json").write_text(json.dumps(
        {"arch": "x86_64", "cpu": "Some Other CPU", "machine": "m", "num_cpu": "64", "os": "Linux", "ram": "1",
         "version": 1}))
    with pytest.raises(machine.MachineError, match="record this host under another --machine name"):
        machine.register(str(tmp_path / "results"), "m")


def test_a_missing_build_index_is_refused_while_results_exist(project):
    os.remove(os.path.join(project, "builds.json"))
    before = snapshot(project)
    result = run_main(project, "--device", "cpu", "--quick", "--bench", BASE, "--replace")
    assert result.returncode == 2
    assert "builds.json is missing" in one_error_line(result) and "git checkout -- builds.json" in result.stderr
    assert snapshot(project) == before


def test_results_not_writable_is_said_so(project):
    """It was "no benchmark matched --bench", after a whole run."""
    os.chmod(os.path.join(project, "results"), 0o555)
    try:
        before = snapshot(project)
        result = subprocess.run(
            respecting_modes([sys.executable, "-m", "torch_overhead", "run", "--project-root", project,
                              "--machine", "other", "--device", "cpu", "--quick"]),
            capture_output=True, text=True, env=dict(os.environ, HOME=project), timeout=300)
        assert result.returncode == 2
        line = one_error_line(result)
        assert "results is not writable by this user" in line and "no benchmark matched" not in line
        assert snapshot(project) == before
    finally:
        os.chmod(os.path.join(project, "results"), 0o755)


def test_a_failing_publish_leaves_the_previous_dashboard(project):
    html = html_hashes(project)
    assert html  # the recorded project's dashboard
    with open(os.path.join(project, "builds.json"), "w") as f:
        f.write("{corrupt")
    status = dashboard.publish(project, "asv.conf.json", dict(os.environ, HOME=project))
    assert status != 0
    assert html_hashes(project) == html
    assert not glob.glob(os.path.join(project, dashboard.STAGING_PREFIX + "*"))


def test_ctrl_c_during_publish_says_truly_what_was_recorded(project):
    """Interrupted once publishing has started: the new result is recorded (and said so), and
    the dashboard is either the previous one or the new one whole, as the message says."""
    html = html_hashes(project)
    env = dict(os.environ, HOME=project)
    proc = terminal_job(
        [sys.executable, "-m", "torch_overhead", "run", "--project-root", project, "--machine", "ci-cpu",
         "--device", "cpu", "--quick", "--replace", "--bench", BASE], env)
    for line in proc.stdout:
        if line.startswith("[5/5]"):
            break
    ctrl_c(proc)  # at once: publishing a one-result project can finish within half a second
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.fail("the run finished before the interruption; nothing was tested")
    assert proc.returncode == 130, err
    line = one_error_line(subprocess.CompletedProcess([], 130, "", err))
    assert "interrupted during step 5/5" in line
    assert "recorded: results/ci-cpu/" in line  # the figures were recorded before publishing
    now = html_hashes(project)
    if "the dashboard html/ is the previous one" in line:
        assert now == html
    else:
        assert "the dashboard was updated" in line and now != html
        assert os.path.join(project, "html", "index.html") in now


def test_a_hanging_interpreter_is_stopped_with_its_children(tmp_path, monkeypatch):
    pid_file = tmp_path / "child.pid"
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nsleep 600 &\necho $! > {pid_file}\nwait\n")
    python.chmod(0o755)
    monkeypatch.setattr(probe, "TIMEOUT_S", 2)
    with pytest.raises(probe.ProbeError, match="did not report its torch build within 2 s"):
        probe.probe(str(python))
    child = int(pid_file.read_text())
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with open(f"/proc/{child}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":  # killed; reaping it is its new parent's business
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the interpreter's child {child} is still running")


def test_the_trials_script_passes_its_quick_trials():
    """``trials`` replays the faults on scratch copies; its gate and bad-option trials take seconds."""
    for only in ("gate", "run attribute"):
        result = subprocess.run([sys.executable, "-m", "torch_overhead", "trials", "--only", only],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        (summary,) = [line for line in result.stdout.splitlines() if line.endswith("trials fail safe")]
        done, total = summary.split(" trials")[0].split(" of ")
        assert done == total and int(total) >= 3, summary


def test_other_pinning_is_recorded_as_its_own_environment(project):
    """Unpinned figures of a build go beside the pinned ones, never over them or onto their
    graph line (the pinning is part of the asv environment name); readers take the default's."""
    from torch_overhead.lib.recorded import latest_results

    pinned = results_file(project)
    with open(pinned, "rb") as f:
        before = f.read()
    result = run_main(project, "--device", "cpu", "--quick", "--cpu-affinity", "none",
                      "--bench", r"^layers\.Eager\.time_add1\(False, False, False, False\)")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p for p in glob.glob(os.path.join(project, "results", "ci-cpu", "*.json"))
                   if not p.endswith("machine.json"))
    unpinned = [p for p in files if p != pinned]
    assert len(unpinned) == 1 and unpinned[0].endswith("-TORCH_OVERHEAD_PINNINGnone.json"), files
    with open(pinned, "rb") as f:
        assert f.read() == before
    assert "PINNING" not in latest_results(project, "ci-cpu").env_name
