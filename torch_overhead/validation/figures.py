"""Check the suite's figures: fidelity, cost and stability, printed as one table.

``python -m torch_overhead figures [--device cuda|cpu] [--runs 3]`` runs the seed suite
(every variant of the headline's ``time_add1``; ``--bench layers.Eager.time_add1`` or
another layer's instead) ``--runs`` times through the main command (default settings, not
``--quick``), timing each, and prints per variant:

* the asv median of each run and their spread, (max - min) / min;
* the reference median (of the runs' references) and the fidelity ratio asv / reference:
  the median over runs of each run's median over its own reference;
* the wall time of each whole run, less the time its references took.

The reference is deliberately not asv, and taken in-process, in the same run: each of the
run's benchmark processes times the call once more right after its compile and warm-up,
before asv's samples (``benchmarks/reference.py``, asked for through
``REFERENCE_FILE_ENV_VAR``), and the variant's processes are pooled as asv pools its rounds:
taken in other processes, it met other slow spells of a shared machine than the run had
(docs/validation.md). The last run's results stay recorded.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

from ..lib import main_command, recorded
from ..lib.recorded import latest_medians
from ..lib.suite import settings

HEADLINE = settings.HEADLINE


def _class_path(benchmark):
    """``module.Class`` of a ``module.Class.time_add1`` benchmark name."""
    return benchmark.rsplit(".", 1)[0]


def run_suite(python, device, machine, cpu, project_root, log_path, benchmark=HEADLINE, attributes=()):
    """One whole main-command run of ``benchmark``'s variants (host clock), with ``attributes``
    as its ``--attribute`` overrides (``rounds=3``: three processes per variant), each benchmark
    process also timing its in-process reference; returns (wall seconds less the references'
    own, {variant: asv median seconds}, {variant: reference median seconds})."""
    references = os.path.abspath(log_path) + ".references.jsonl"  # written by the benchmark processes, elsewhere
    if os.path.exists(references):
        os.remove(references)
    start = time.perf_counter()
    cmd = main_command.command(project_root, device, python=python, machine=machine, cpu_affinity=cpu,
                      bench="^" + re.escape(benchmark) + r"\(", attribute=attributes, replace=True)
    with open(log_path, "w") as log:
        status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, **{settings.REFERENCE_FILE_ENV_VAR: references})).returncode
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` exited {status}; its output is in {log_path}")
    _, medians = latest_medians(project_root, machine, benchmark)
    reference, reference_seconds = read_references(references, _class_path(benchmark))
    return wall - reference_seconds, medians, reference


def read_references(path, class_path):
    """The in-process references that the run's benchmark processes of ``class_path`` appended
    to ``path`` (``benchmarks/reference.py``): ``{variant: median seconds per call}``, each
    variant's block times pooled over its processes as asv pools its rounds, and the seconds
    they took in all."""
    pooled, seconds = {}, 0.0
    with open(path) as lines:
        for line in lines:
            entry = json.loads(line)
            if entry["class"] == class_path:
                pooled.setdefault(tuple(entry["variant"]), []).extend(entry["times"])
                seconds += entry["seconds"]
    return {variant: statistics.median(times) for variant, times in pooled.items()}, seconds


def compare(runs, references):
    """``{variant: (asv medians, spread %, reference median, asv/reference)}`` from per-run
    ``{variant: seconds}`` dicts, ``references[i]`` taken right after ``runs[i]``: the ratio is
    the median over runs of each run against its own reference, never against another's."""
    table = {}
    for variant in sorted(runs[0]):
        pairs = [(run[variant], ref[variant]) for run, ref in zip(runs, references) if variant in run]
        meds = [m for m, _ in pairs]
        spread = (max(meds) - min(meds)) / min(meds) * 100
        table[variant] = (meds, spread, statistics.median(r for _, r in pairs),
                          statistics.median(m / r for m, r in pairs))
    return table


def main(args):
    try:
        args.bench = recorded.host_clock_add1(os.path.join(args.project_root, "benchmarks"), args.bench)
    except recorded.RecordedResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    walls, runs, references = [], [], []
    log_dir = os.path.join(args.project_root, ".asv")
    os.makedirs(log_dir, exist_ok=True)
    for i in range(args.runs):
        log_path = os.path.join(log_dir, f"figures-run-{i + 1}.log")
        wall, medians, reference = run_suite(args.python, args.device, args.machine, args.cpu_affinity,
                                             args.project_root, log_path, args.bench, args.attribute or ())
        print(f"run {i + 1}/{args.runs}: {wall:.1f} s wall, {len(medians)} variants", flush=True)
        walls.append(wall)
        runs.append(medians)
        references.append(reference)

    us = lambda s: f"{s * 1e6:8.2f}"  # noqa: E731
    head = settings.SEED_PARAM_NAMES
    print()
    print(f"{args.bench}, device {args.device}, machine {args.machine}; medians in microseconds per call")
    print(" | ".join(head + [f"asv run {i + 1}" for i in range(len(runs))] + ["spread %", "reference", "asv/ref"]))
    worst_spread, worst_fidelity = 0.0, 0.0
    for variant, (meds, spread, reference, ratio) in compare(runs, references).items():
        worst_spread = max(worst_spread, spread)
        worst_fidelity = max(worst_fidelity, abs(ratio - 1))
        print(" | ".join([str(v) for v in variant] + [us(m) for m in meds]
                         + [f"{spread:6.1f}", us(reference), f"{ratio:5.3f}"]))
    print()
    print("wall seconds per whole run, less its references: " + ", ".join(f"{w:.1f}" for w in walls))
    print(f"worst spread across runs: {worst_spread:.1f}% (target <= 5%)")
    print(f"worst fidelity |asv/ref - 1|: {worst_fidelity * 100:.1f}% (target <= 10%)")
    print(json.dumps({"walls": walls, "worst_spread_pct": worst_spread, "worst_fidelity_pct": worst_fidelity * 100}))
    return 0
