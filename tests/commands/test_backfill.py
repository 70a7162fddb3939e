"""Backfill without downloading a release: its refusals (a build that cannot be installed, one
that is not the build it is named as), resuming, sharding, and merging shards."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from asv.results import Results

from conftest import committed, make_project, snapshot
from torch_overhead.commands.backfill import BuildSpecError, shard, still_to_run
from torch_overhead.lib import builds, result_files

TORCH_2_13 = "cf30153c4c131c8164ee7798e5022d810682e2cb"  # committed: torch 2.13.0+cpu on cpu-2core
TORCH_2_14 = "5c4886908584029761b579af026dcfb627c84070"  # committed: torch 2.14.1+cu130 on cpu-2core


def fake_torch_wheel(directory, version, commit):
    """A real, installable wheel named torch whose build names ``commit``: enough for the
    identity check, which must refuse it before anything is benchmarked."""
    path = os.path.join(directory, f"torch-{version}-py3-none-any.whl")
    files = {
        "torch/__init__.py": f"__version__ = {version!r}\nfrom . import cuda, version\n",
        "torch/version.py": f"git_version = {commit!r}\ncuda = None\n",
        "torch/cuda.py": "def is_available():\n    return False\n",
        f"torch-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"torch-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = f"torch-{version}.dist-info/RECORD"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(record, "\n".join(f"{name},," for name in [*files, record]) + "\n")
    return path


def backfill(project, *args, machine="ci-cpu"):
    return subprocess.run(
        [sys.executable, "-m", "torch_overhead", "backfill", *args, "--device", "cpu",
         "--machine", machine, "--project-root", project],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, HOME=project),
    )


def test_a_wheel_whose_commit_differs_from_its_label_is_refused(tmp_path):
    project = make_project(tmp_path / "project")
    wheel = fake_torch_wheel(str(tmp_path), "2.13.0", "1" * 40)
    result = backfill(project, f"{wheel}@2222222")
    assert result.returncode == 1
    assert "labelled 2222222 but torch 2.13.0 was built from 111111111111" in result.stderr
    assert snapshot(project) == {}  # nothing recorded, no index entry


def test_a_version_that_cannot_be_installed_is_reported_and_skipped(tmp_path):
    project = make_project(tmp_path / "project")
    result = backfill(project, "0.0.1")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "pip download torch==0.0.1 failed" in errors[0]
    assert snapshot(project) == {}


def test_a_spec_that_is_not_a_build_is_refused(tmp_path):
    project = make_project(tmp_path / "project")
    result = backfill(project, "latest-nightly")
    assert result.returncode == 1
    assert "neither a torch version, a .whl file nor a directory of wheels" in result.stderr


def recorded_project(path, commits=(TORCH_2_13, TORCH_2_14)):
    """A project holding the committed cpu-2core results of ``commits`` and their index entries."""
    project = make_project(path)
    committed(project, "results/benchmarks.json", "results/cpu-2core", "builds.json")
    for result in glob.glob(os.path.join(project, "results", "cpu-2core", "*-*.json")):
        if not any(os.path.basename(result).startswith(c[:8]) for c in commits):
            os.remove(result)
    index = os.path.join(project, "builds.json")
    builds.save(index, [b for b in builds.load(index) if b["commit"] in commits])
    return project


def test_shards_partition_the_list_in_order():
    specs = [f"2.{minor}.0" for minor in range(1, 16)]
    slices = [shard(specs, f"{k}/4") for k in range(1, 5)]
    assert slices[1] == ["2.2.0", "2.6.0", "2.10.0", "2.14.0"]
    assert sorted(sum(slices, []), key=specs.index) == specs  # each build in exactly one shard
    for bad in ("0/4", "5/4", "2", "a/b"):
        with pytest.raises(BuildSpecError, match="K/N"):
            shard(specs, bad)


def test_a_bad_shard_is_one_error_line(tmp_path):
    result = backfill(make_project(tmp_path / "project"), "2.13.0", "--shard", "3/2")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: --shard 3/2: give K/N with 1 <= K <= N, e.g. --shard 2/4"]


def test_a_recorded_build_is_skipped_before_download(tmp_path):
    """Rerun after an interruption: 2.13.0 has its headline on cpu-2core, so nothing is fetched
    (this machine has no torch 2.13.0 download to make) and nothing changes."""
    project = recorded_project(tmp_path / "project")
    before = snapshot(project)
    result = backfill(project, "2.13.0", "--bench", "^runtime_overhead", machine="cpu-2core")
    assert result.returncode == 0, result.stderr
    assert "=== build 1 already recorded, skipped" in result.stdout
    assert "installing" not in result.stdout
    assert snapshot(project) == before


def drop_counts(project, commit):
    """The build's recorded instruction counts removed, its times kept: a build timed but not counted."""
    (path,) = glob.glob(os.path.join(project, "results", "cpu-2core", commit[:8] + "-*.json"))
    results = Results.load(path)
    for name in list(results.get_all_result_keys()):
        if name.startswith("instruction_count."):
            results.remove_result(name)
    results.save(os.path.join(project, "results"))


def test_what_a_resumed_build_still_runs(tmp_path):
    project = recorded_project(tmp_path / "project")
    assert still_to_run(project, "cpu-2core", TORCH_2_13, ["^runtime_overhead", "^layers"]) == []  # done
    assert still_to_run(project, "cpu-2core", TORCH_2_13, None) == []  # without --bench: any results
    drop_counts(project, TORCH_2_14)
    # timed but never counted: only the counts are run, the recorded times are not replaced
    missing = still_to_run(project, "cpu-2core", TORCH_2_14, ["^runtime_overhead", "^instruction_count"])
    assert any(re.search(p, "instruction_count.InstructionCount.track_instructions(False, False, False, False)")
               for p in missing)
    assert all(p.startswith(r"^instruction_count\.") for p in missing), missing
    # one variant of one layer asked for: that variant alone, not every variant of the benchmark
    eager_base = "instruction_count.LayerInstructionCount.track_instructions('eager', False, False, False, False)"
    (only,) = still_to_run(project, "cpu-2core", TORCH_2_14, ["^" + re.escape(eager_base)])
    assert re.search(only, eager_base) and not re.search(only, eager_base.replace("'eager'", "'dynamo'"))
    assert still_to_run(project, "other-machine", TORCH_2_13, None) is None  # nothing: run it all
    assert still_to_run(project, "cpu-2core", "e" * 40, ["^layers"]) is None


def test_a_build_found_recorded_after_its_install_is_skipped(tmp_path):
    """A folder of wheels names no version: the build is only known once installed, and then
    it is skipped without running anything."""
    project = recorded_project(tmp_path / "project")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    fake_torch_wheel(str(wheels), "2.14.1", TORCH_2_14)
    before = snapshot(project)
    result = backfill(project, str(wheels), machine="cpu-2core")
    assert result.returncode == 0, result.stderr
    assert "installing it into a fresh environment" in result.stdout
    assert "=== build 1 already recorded, skipped" in result.stdout
    assert snapshot(project) == before


def merge(project, *shards, options=()):
    return subprocess.run([sys.executable, "-m", "torch_overhead", "backfill", "--project-root", project,
                           *options, "--merge", *shards], capture_output=True, text=True, timeout=120)


def test_two_shards_merge_into_one_history(tmp_path):
    """Shards recorded separately (each its own project: its build, the shared suite file, its
    machine file) merge into a project that has neither; merging again changes nothing."""
    first = recorded_project(tmp_path / "shard1", commits=[TORCH_2_13])
    second = recorded_project(tmp_path / "shard2", commits=[TORCH_2_14])
    project = make_project(tmp_path / "project")
    result = merge(project, first, second)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{first}: 1 new builds, 2 new result files",
                                          f"{second}: 1 new builds, 1 new result files"]
    merged = snapshot(project)
    expected = {**snapshot(first), **snapshot(second)}
    assert {k for k in merged if k != "builds.json"} == {k for k in expected if k != "builds.json"}
    assert all(merged[k] == expected[k] for k in merged if k != "builds.json")
    assert {b["commit"] for b in builds.load(os.path.join(project, "builds.json"))} == {TORCH_2_13, TORCH_2_14}
    assert merge(project, first, second).returncode == 0
    assert snapshot(project) == merged
    published = subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=project, capture_output=True,
                               text=True, env=dict(os.environ, HOME=project), timeout=300)
    assert published.returncode == 0, published.stdout[-2000:]
    with open(os.path.join(project, "html", "index.json")) as f:
        assert set(json.load(f)["revision_to_hash"].values()) == {TORCH_2_13, TORCH_2_14}


def test_shards_that_disagree_about_a_commit_are_refused_untouched(tmp_path):
    first = recorded_project(tmp_path / "shard1", commits=[TORCH_2_13])
    second = recorded_project(tmp_path / "shard2", commits=[TORCH_2_14])
    index = os.path.join(second, "builds.json")
    builds.register(index, TORCH_2_13, "2.13.1", date="2026-08-01T00:00:00+00:00")
    project = make_project(tmp_path / "project")
    result = merge(project, first, second)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {second} records commit cf30153c4c13 as torch 2.13.1, the merge so far as torch 2.13.0+cpu: "
        "one commit is one build; find which shard installed the wrong torch and drop its results of that commit"]
    assert snapshot(project) == {}


def test_a_build_recorded_twice_is_refused(tmp_path):
    first = recorded_project(tmp_path / "shard1", commits=[TORCH_2_13])
    second = recorded_project(tmp_path / "shard2", commits=[TORCH_2_13])
    (result_file,) = glob.glob(os.path.join(second, "results", "cpu-2core", "cf30153c-*.json"))
    with open(result_file) as f:
        data = json.load(f)
    data["date"] += 1
    with open(result_file, "w") as f:
        json.dump(data, f)
    project = make_project(tmp_path / "project")
    result = merge(project, first, second)
    assert result.returncode == 2 and "the same build was recorded twice" in result.stderr
    assert snapshot(project) == {}
    shutil.rmtree(second)
    assert merge(project, first).returncode == 0


def split_by_variant(project, shards):
    """The project's one result file rewritten into each shard, shard k keeping the variants
    i with i % len(shards) == k and NaN elsewhere, as a run selecting those variants writes it."""
    (path,) = glob.glob(os.path.join(project, "results", "cpu-2core", "cf30153c-*.json"))
    relative = os.path.relpath(path, project)
    with open(path) as f:
        whole = json.load(f)
    columns = whole["result_columns"]
    for k, folder in enumerate(shards):
        part = json.loads(json.dumps(whole))
        for row in part["results"].values():
            for i in range(len(row[0] or [])):
                if i % len(shards) != k:
                    row[0][i] = float("nan")
                    for column in result_files.PER_VARIANT[1:]:
                        j = columns.index(column)
                        if j < len(row) and row[j] is not None:
                            row[j][i] = None
        with open(os.path.join(folder, relative), "w") as f:
            json.dump(part, f)
    return relative


def recorded_values(project, relative):
    results = Results.load(os.path.join(project, relative), "cpu-2core")
    return {name: [None if v != v else v for v in results.get_result_value(name, results.get_result_params(name))]
            for name in results.get_all_result_keys()}


def test_one_build_recorded_in_runs_of_other_variants_merges_variant_by_variant(tmp_path):
    """One build recorded by runs that each selected other variants (--bench), each in its own
    folder (as calls of a machine lent for minutes), merges into one file holding every variant
    once; merging again changes nothing; a variant two shards measured differently is refused
    with nothing written."""
    whole = recorded_project(tmp_path / "whole", commits=[TORCH_2_13])
    shards = [recorded_project(tmp_path / f"shard{k}", commits=[TORCH_2_13]) for k in (1, 2)]
    relative = split_by_variant(whole, shards)
    assert recorded_values(shards[0], relative) != recorded_values(whole, relative)
    project = make_project(tmp_path / "project")
    result = merge(project, *shards)
    assert result.returncode == 0, result.stderr
    added = re.fullmatch(rf"{re.escape(shards[1])}: 0 new builds, 0 new result files, (\d+) variants added to "
                         r"recorded files", result.stdout.splitlines()[1])
    assert added and int(added.group(1)) > 10, result.stdout
    assert recorded_values(project, relative) == recorded_values(whole, relative)
    merged = snapshot(project)
    assert merge(project, *shards).returncode == 0 and snapshot(project) == merged

    with open(os.path.join(shards[1], relative)) as f:
        data = json.load(f)
    name, row = next((n, r) for n, r in data["results"].items() if r[0] and r[0][1] == r[0][1] and r[0][1])
    row[0][1] *= 1.5
    with open(os.path.join(shards[1], relative), "w") as f:
        json.dump(data, f)
    fresh = make_project(tmp_path / "fresh")
    result = merge(fresh, *shards, whole)
    assert result.returncode == 2 and snapshot(fresh) == {}
    assert len(result.stderr.splitlines()) == 1 and f"both measured {name}(" in result.stderr, result.stderr


LAYER_COUNTS = "instruction_count.LayerInstructionCount.track_instructions"


def scale_layer(project, relative, layer, factor):
    """Every recorded count of ``layer`` in the project's result file times ``factor``: a fresh
    counting of that layer alone."""
    path = os.path.join(project, relative)
    with open(path) as f:
        data = json.load(f)
    for name, row in data["results"].items():
        if name.startswith(LAYER_COUNTS):
            layers = row[1][0]
            per_layer = len(row[0]) // len(layers)  # the layer is the first, slowest-varying parameter
            start = layers.index(repr(layer)) * per_layer
            row[0][start:start + per_layer] = [v * factor if v is not None else v
                                               for v in row[0][start:start + per_layer]]
    with open(path, "w") as f:
        json.dump(data, f)


def test_a_run_on_a_copy_of_the_project_merges_what_its_bench_selected(tmp_path):
    """A shard made by ``run --replace --bench`` on a copy of the project (a lent machine's fresh
    copy) holds its layer newly counted and the rest as it found them. ``--merge --bench --replace``
    takes only that layer, over the recorded one, and keeps what was recorded since for the rest;
    without --replace or without --bench it is the one-line refusal, with nothing written."""
    project = recorded_project(tmp_path / "project", commits=[TORCH_2_13])
    shard_dir = recorded_project(tmp_path / "shard", commits=[TORCH_2_13])
    (path,) = glob.glob(os.path.join(project, "results", "cpu-2core", "cf30153c-*.json"))
    relative = os.path.relpath(path, project)
    before_run = recorded_values(project, relative)
    scale_layer(shard_dir, relative, "eager", 1.01)   # the shard's run counted eager again
    scale_layer(project, relative, "dynamo", 0.99)    # the project took a newer Dynamo count meanwhile
    recorded = snapshot(project)
    select = ["--bench", r"^instruction_count\.LayerInstructionCount\.[a-z_]+\('eager'"]

    for options in ((), select):
        result = merge(project, shard_dir, options=options)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "--bench REGEX --replace" in result.stderr and snapshot(project) == recorded
    result = merge(project, shard_dir, options=["--replace"])
    assert result.returncode == 2 and result.stderr.startswith("error: --replace goes with --merge and --bench")
    assert snapshot(project) == recorded

    result = merge(project, shard_dir, options=[*select, "--replace"])
    assert result.returncode == 0, result.stderr
    after, shard = recorded_values(project, relative), recorded_values(shard_dir, relative)
    layers = ["eager", "dynamo", "aot_eager", "inductor_cudagraphs", "inductor_cpp_wrapper", "triton_launch",
              "cuda_graph_replay"]
    replaced = 0
    for name, values in after.items():
        for i, value in enumerate(values):
            layer = layers[i // (len(values) // len(layers))] if name.startswith(LAYER_COUNTS) else None
            if layer == "eager":
                assert value == shard[name][i]
                replaced += value is not None
            elif layer == "dynamo" and value is not None:
                assert value == before_run[name][i] * 0.99  # recorded since the shard's copy: kept
            else:
                assert value == before_run[name][i], (name, i)
    assert replaced >= 10
    assert result.stdout.splitlines() == [f"{shard_dir}: 0 new builds, 0 new result files, "
                                          f"{replaced} recorded variants replaced"]
    merged = snapshot(project)
    assert merge(project, shard_dir, options=[*select, "--replace"]).returncode == 0 and snapshot(project) == merged
