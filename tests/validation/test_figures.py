"""figures: each run is set against its own reference, taken in-process by the run's own
benchmark processes."""

import json
import statistics
import sys

import pytest

from torch_overhead.validation import figures
from conftest import ROOT, make_project

BASE = (False, False, False, False)


def test_each_run_is_compared_with_its_own_reference():
    # The machine slows 2x between the first and the second run: each run against its own
    # reference reads 1.1 both times; against a pooled reference it would read 0.73 and 1.47.
    runs = [{BASE: 11e-6}, {BASE: 22e-6}]
    references = [{BASE: 10e-6}, {BASE: 20e-6}]
    meds, spread, reference, ratio = figures.compare(runs, references)[BASE]
    assert meds == [11e-6, 22e-6]
    assert spread == pytest.approx(100.0)
    assert reference == pytest.approx(15e-6)
    assert ratio == pytest.approx(1.1)


def test_references_are_pooled_per_variant_over_the_processes_of_the_class(tmp_path):
    path = tmp_path / "refs.jsonl"
    lines = [{"class": "layers.Eager", "variant": list(BASE), "times": [1e-6, 2e-6], "seconds": 0.5},
             {"class": "layers.Eager", "variant": list(BASE), "times": [3e-6], "seconds": 0.25},
             {"class": "layers.DynamoEager", "variant": list(BASE), "times": [9e-6], "seconds": 0.5}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    medians, seconds = figures.read_references(str(path), "layers.Eager")
    assert medians == {BASE: pytest.approx(2e-6)}
    assert seconds == pytest.approx(0.75)


def test_each_benchmark_process_of_a_run_times_its_own_reference(tmp_path, monkeypatch):
    """A real run through the main command, as figures makes it with ``--attribute rounds=3``:
    every asv process appends one reference of the same call (three rounds, where the class
    has two: three per variant, so the attribute reached asv), and every recorded variant
    gets a reference of the same order as asv's median."""
    project = make_project(tmp_path / "project")
    monkeypatch.setenv("HOME", project)  # keep asv's machine file out of the user's home
    log = str(tmp_path / "run.log")
    wall, medians, references = figures.run_suite(sys.executable, "cpu", "ci-cpu", "none", project, log,
                                                  "layers.Eager.time_add1", ["rounds=3"])
    assert medians and set(references) == set(medians)
    ratios = {variant: median / references[variant] for variant, median in medians.items()}
    # A reference of another call, or in another unit, moves every variant's ratio; a loaded CI host
    # can stall one variant's process alone, so one ratio may stray further than their median.
    assert 0.2 < statistics.median(ratios.values()) < 5, ratios
    assert all(0.1 < ratio < 10 for ratio in ratios.values()), ratios
    with open(log + ".references.jsonl") as lines:
        assert len(lines.readlines()) == 3 * len(medians)
    assert wall > 0


def test_a_run_not_made_by_figures_takes_no_reference(monkeypatch):
    monkeypatch.syspath_prepend(ROOT)
    from benchmarks import reference

    monkeypatch.delenv(reference.REFERENCE_FILE_ENV_VAR, raising=False)
    untouchable = object()  # any use of it as add1 or a would raise
    reference.record(object, BASE, untouchable, untouchable)
