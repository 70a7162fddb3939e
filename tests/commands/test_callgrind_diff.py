"""callgrind-diff's reading and diffing of callgrind profiles, on two small real profiles.

The whole command (two builds, a compile and a callgrind run each) takes minutes: its output on
real builds is in docs/measurements; here valgrind profiles two short Python programs."""

import os
import subprocess
import sys

import pytest

from conftest import one_error_line
from torch_overhead.commands.callgrind_diff import DiffError, diff, functions, parse_variant


def profile(tmp_path, name, code):
    out = str(tmp_path / f"{name}.out")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code],
                   check=True, capture_output=True, timeout=300)
    return out


def test_more_work_shows_as_the_largest_increase(tmp_path):
    small = profile(tmp_path, "small", "sorted(str(i) for i in range(1000))")
    large = profile(tmp_path, "large", "sorted(str(i) for i in range(200000))")
    old_ex, new_ex = functions(small, inclusive=False), functions(large, inclusive=False)
    old_in, new_in = functions(small, inclusive=True), functions(large, inclusive=True)
    assert sum(new_ex.values()) > 2 * sum(old_ex.values()) > 0  # the interpreter start-up is in both
    assert not any("'" in name for name in new_ex)  # recursion levels folded into one function
    for inclusive, exclusive in ((old_in, old_ex), (new_in, new_ex)):  # inclusive costs contain the callees'
        assert max(inclusive.values()) >= max(exclusive.values())
    lines = diff(old_ex, new_ex, calls=1, top=5)
    assert lines[0].split()[:3] == ["change", "old", "new"] and len(lines) == 6
    changes = [int(line.split()[0].replace(",", "")) for line in lines[1:]]
    assert changes[0] > 0 and changes == sorted(changes, key=lambda c: -abs(c))


def test_variants_are_named_by_their_flags():
    assert parse_variant("base") == (False, False, False, False)
    assert parse_variant("requires_grad+backward+dynamic") == (True, False, True, True)
    for bad in ("backward", "inference_mode+backward+requires_grad", "grad"):
        with pytest.raises(DiffError, match="name the flags that are on"):
            parse_variant(bad)


def test_cuda_asked_of_a_build_without_a_gpu_is_one_error_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this build sees a GPU: --device cuda would count on it (minutes)")
    result = subprocess.run([sys.executable, "-m", "torch_overhead", "callgrind-diff", "--device", "cuda",
                             sys.executable, sys.executable], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "sees no CUDA device" in one_error_line(result)


def test_without_callgrind_annotate_it_says_so_before_counting(tmp_path):
    """A relocated valgrind kit (the GPU machine's) may come without valgrind's profile reader."""
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "valgrind").write_text("#!/bin/sh\n")
    (kit / "valgrind").chmod(0o755)
    env = dict(os.environ, TORCH_OVERHEAD_VALGRIND=str(kit / "valgrind"), PATH=os.path.dirname(sys.executable))
    result = subprocess.run([sys.executable, "-m", "torch_overhead", "callgrind-diff", sys.executable, sys.executable],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert "callgrind_annotate" in one_error_line(result)
    assert "counting" not in result.stdout
