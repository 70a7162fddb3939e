"""The build index and the asv repository type that reads it."""

import json

import pytest
from asv.repo import NoSuchNameError
from asv.util import UserError

from torch_overhead.lib import builds
from torch_overhead.asv_plugins.repo import TorchBuildIndex
from torch_overhead.lib.probe import ProbeError, TorchBuild

A = "a" * 40
B = "b" * 40
C = "c" * 40


@pytest.fixture
def index(tmp_path):
    path = str(tmp_path / "builds.json")
    builds.register(path, A, "2.13.0+cpu", date="2026-06-01T00:00:00+00:00")
    builds.register(path, B, "2.14.1", date="2026-09-01T00:00:00+00:00")
    builds.register(path, C, "2.15.0.dev20261020+cu130")
    return path


def test_channels_and_dates_come_from_the_version(index):
    entries = {b["commit"]: b for b in builds.load(index)}
    assert entries[A]["channel"] == "release"
    assert entries[C]["channel"] == "nightly"
    assert entries[C]["date"].startswith("2026-10-20")
    assert builds.channel_of("2.15.0a0+git1234abc") == "main"


def test_register_is_idempotent_and_refuses_a_relabel(index):
    assert builds.register(index, A, "2.13.0+cpu")["date"] == "2026-06-01T00:00:00+00:00"
    with pytest.raises(builds.BuildIndexError, match="recorded as torch 2.13.0"):
        builds.register(index, A, "2.14.1")
    with pytest.raises(builds.BuildIndexError, match="names no commit"):
        builds.register(index, "Unknown", "2.13.0")
    assert len(builds.load(index)) == 3


def test_corrupt_index_is_an_error_not_an_empty_history(tmp_path):
    path = tmp_path / "builds.json"
    path.write_text(json.dumps({"version": 1, "builds": [{"commit": "xyz"}]}))
    with pytest.raises(builds.BuildIndexError, match="malformed"):
        builds.load(str(path))


def test_repo_resolves_hashes_versions_tags_and_channels(index):
    repo = TorchBuildIndex(index, None)
    assert repo.get_hash_from_name(A) == A
    assert repo.get_hash_from_name("bbbbbbbb") == B
    assert repo.get_hash_from_name("2.13.0+cpu") == A
    assert repo.get_hash_from_name("torch-2.14.1") == B
    assert repo.get_hash_from_name("2.13.0") == A  # the release without the wheel's +cpu
    assert repo.get_hash_from_name("nightly") == C
    assert repo.get_hash_from_name(None) == B  # newest release
    assert repo.get_name_from_hash(A) == "torch-2.13.0+cpu"
    with pytest.raises(NoSuchNameError):
        repo.get_hash_from_name("2.99.0")
    with pytest.raises(NoSuchNameError):
        repo.get_hash_from_name("dddddddd")


def test_a_release_named_without_its_suffix_must_name_one_build(index):
    builds.register(index, "d" * 40, "2.13.0+cu130", date="2026-06-02T00:00:00+00:00")
    with pytest.raises(UserError, match=r"2.13.0 names 2 recorded builds \(2.13.0\+cpu, 2.13.0\+cu130\); name one"):
        TorchBuildIndex(index, None).get_hash_from_name("2.13.0")


def test_repo_orders_history_by_build_date(index):
    repo = TorchBuildIndex(index, None)
    assert repo.get_branch_commits("release") == [B, A]
    assert repo.get_revisions({A, B, C}) == {A: 0, B: 1, C: 2}
    assert repo.get_hashes_from_range(f"{A}..{C}") == [C, B]
    assert repo.get_hash_from_parent(B) == A
    assert repo.get_date(A) < repo.get_date(B)


def build(cuda, gpu=None):
    return TorchBuild(python="python", version="2.13.0+cpu", git_version=A,
                      cuda_runtime="13.0" if cuda else None, cuda=cuda, gpu=gpu, python_version="3.11")


def test_device_choice_and_machine_names():
    assert build(True, "NVIDIA H200").resolve_device("auto") == "cuda"
    assert build(False).resolve_device("auto") == "cpu"
    with pytest.raises(ProbeError, match="a CPU-only build"):
        build(False).resolve_device("cuda")
    assert build(True, "NVIDIA H200").default_machine_name("cuda", "node7") == "nvidia-h200"
    assert build(True, "NVIDIA H200").default_machine_name("cpu", "Node7") == "cpu-node7"


def test_a_results_file_is_labelled_by_the_version_the_index_gives_its_commit(index, tmp_path):
    from types import SimpleNamespace

    from torch_overhead.lib.recorded import RecordedResultsError, build_label

    project = str(tmp_path)  # the fixture's index is this folder's builds.json
    assert build_label(project, SimpleNamespace(commit_hash=A)) == f"torch 2.13.0+cpu @ {A[:12]}"
    unknown = "d" * 40
    assert build_label(project, SimpleNamespace(commit_hash=unknown)) == f"torch {unknown[:12]}"
    (tmp_path / "builds.json").write_text("{")
    with pytest.raises(RecordedResultsError, match="unreadable"):
        build_label(project, SimpleNamespace(commit_hash=A))
