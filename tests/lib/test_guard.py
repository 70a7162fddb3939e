"""The runner's guards around asv: the checkout's lock, and copies of the files asv rewrites in place."""

import json

import pytest

from torch_overhead.lib import guard


def test_the_lock_refuses_a_second_holder_and_is_free_once_closed(tmp_path):
    with guard.lock(str(tmp_path)):
        with pytest.raises(guard.LockedError, match="another run is recording in this checkout"):
            guard.lock(str(tmp_path))
    guard.lock(str(tmp_path)).close()  # released with its file: no stale lock


def test_a_file_left_half_written_is_restored_and_a_whole_one_kept(tmp_path):
    cut, rewritten = tmp_path / "results.json", tmp_path / "benchmarks.json"
    cut.write_text(json.dumps({"figures": [1, 2, 3]}))
    rewritten.write_text(json.dumps({"version": 1}))
    kept = guard.KeepValid([str(cut), str(rewritten), str(tmp_path / "absent.json")], str(tmp_path / "copies"))
    cut.write_text('{"figures": [1, 2')  # a write cut short by Ctrl-C or a full disk
    rewritten.write_text(json.dumps({"version": 2}))  # a complete rewrite: asv's to make
    assert kept.restore_broken() == [str(cut)]
    assert json.loads(cut.read_text()) == {"figures": [1, 2, 3]}
    assert json.loads(rewritten.read_text()) == {"version": 2}
