"""figures: each run is set against its own reference, and taking a reference leaves the
figures process (and so every later asv run it starts) unpinned."""

import os
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
