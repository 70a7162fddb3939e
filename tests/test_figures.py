"""figures: each run is set against its own reference, and taking a reference leaves the
figures process (and so every later asv run it starts) unpinned."""

import os
import subprocess
import sys

import pytest

from torch_overhead import figures
from conftest import ROOT

BASE = (False, False, False, False)


def test_each_run_is_compared_with_the_reference_taken_after_it():
    # The machine slows 2x between the first and the second run: each run against its own
    # reference reads 1.1 both times; against a pooled reference it would read 0.73 and 1.47.
    runs = [{BASE: 11e-6}, {BASE: 22e-6}]
    references = [{BASE: 10e-6}, {BASE: 20e-6}]
    meds, spread, reference, ratio = figures.compare(runs, references)[BASE]
    assert meds == [11e-6, 22e-6]
    assert spread == pytest.approx(100.0)
    assert reference == pytest.approx(15e-6)
    assert ratio == pytest.approx(1.1)


def test_taking_a_reference_leaves_the_figures_process_unpinned():
    cpus = os.sched_getaffinity(0)
    sys.path.insert(0, ROOT)
    medians = figures.reference_medians([BASE], str(min(cpus)), processes=1, class_path="layers.Eager")
    assert medians[BASE] > 0
    assert os.sched_getaffinity(0) == cpus


_REFERENCE_IN_A_FRESH_PROCESS = """
import os, sys
os.environ["TORCH_OVERHEAD_DEVICE"] = "cpu"
sys.path.insert(0, sys.argv[1])
from torch._inductor import cpu_vec_isa
from torch_overhead import figures
figures.reference_medians([(False, False, False, False)], "none", processes=1, class_path="layers.Eager")
print(cpu_vec_isa.valid_vec_isa_list.cache_info().currsize)
"""


def test_reference_processes_are_forked_from_a_parent_warmed_as_asvs_forkserver():
    """The vector-ISA probes that asv's forkserver runs once are run by the reference processes'
    parent too: each reference process then starts as asv's do, and does not run them again
    (the reference step of a figures run took 23-24 s instead of 48-50 s on the 2-core CPU)."""
    out = subprocess.run([sys.executable, "-c", _REFERENCE_IN_A_FRESH_PROCESS, ROOT], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "1"  # the parent's own cache: filled before it forked
