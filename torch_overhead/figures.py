"""Check the suite's figures: fidelity, cost and stability, printed as one table.

``python -m torch_overhead figures [--device cuda|cpu] [--runs 3]`` runs the seed suite
(every variant of the headline's ``time_add1``; ``--benchmark layers.Eager.time_add1`` or
another layer's instead) ``--runs`` times through the main command (default settings, not
``--quick``), timing each, and right after each run times every variant again with a
reference loop, and prints per variant:

* the asv median of each run and their spread, (max - min) / min;
* the reference median (of the runs' references) and the fidelity ratio asv / reference:
  the median over runs of each run's median over the reference taken right after it;
* the wall time of each whole run.

Each run is paired with its own reference because the H200 machine's speed drifts over
minutes: against a single reference taken after all the runs, asv read 0.67-1.63 of it
there, the reference of a backward variant falling in a slow spell that the runs had missed.

The reference is deliberately not asv, and pooled over two processes per variant as asv
pools its two rounds: ``torch.utils.benchmark.Timer.blocked_autorange``
for the forward variants (batched calls, no per-call clock reads or setup), and for
backward a plain loop over blocks of as many backward calls as asv times at once, because
Timer cannot build the fresh ``add1(a).sum()`` each backward needs outside the timed
region. The last run's results stay recorded.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

from . import forked, recorded, run
from .recorded import HEADLINE, latest_medians


def _class_path(benchmark):
    """``module.Class`` of a ``module.Class.time_add1`` benchmark name."""
    return benchmark.rsplit(".", 1)[0]


def run_suite(python, device, machine, cpu, project_root, log_path, benchmark=HEADLINE):
    """One whole main-command run of ``benchmark``'s variants (host clock); returns
    (wall seconds, {variant: median seconds})."""
    start = time.perf_counter()
    cmd = run.command(project_root, device, python=python, machine=machine, cpu_affinity=cpu,
                      bench="^" + re.escape(benchmark) + r"\(")
    with open(log_path, "w") as log:
        status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` exited {status}; its output is in {log_path}")
    _, medians = latest_medians(os.path.join(project_root, "results"), machine, benchmark)
    return wall, medians


def _reference_times(variant, class_path, cpu):
    """Per-call seconds of one variant of the ``benchmarks.<class_path>`` layer, in this
    (forked) process pinned to ``cpu`` as asv pins its benchmark processes: a list of block
    means (Timer) or of blocks of backward calls (plain loop)."""
    import importlib

    from benchmarks.common import CALLS_PER_TIMING

    if cpu != "none":
        os.sched_setaffinity(0, {int(cpu)})

    module, name = class_path.split(".")
    layer = getattr(importlib.import_module(f"benchmarks.{module}"), name)
    requires_grad, inference_mode, backward, dynamic = variant
    add1, a = layer()._prepare_once(*variant)
    if backward:
        times = []
        for _ in range(100):
            losses = [add1(a).sum() for _ in range(CALLS_PER_TIMING)]
            start = time.perf_counter()
            for loss in losses:
                loss.backward()
            times.append((time.perf_counter() - start) / CALLS_PER_TIMING)
        return times
    return list(reference_timer(add1, a, inference_mode).blocked_autorange(min_run_time=0.5).times)


def reference_timer(add1, a, inference_mode):
    """The reference for a forward variant: a ``torch.utils.benchmark.Timer`` of the bare call."""
    import torch
    import torch.utils.benchmark as tbench

    stmt = "with torch.inference_mode(): add1(a)" if inference_mode else "add1(a)"
    # The thread count must stay as compiled: Timer's default (1) would trip a guard.
    return tbench.Timer(stmt=stmt, globals={"torch": torch, "add1": add1, "a": a}, num_threads=torch.get_num_threads())


def reference_medians(variants, cpu, processes, class_path=_class_path(HEADLINE)):
    """Reference median per variant, pooled over ``processes`` forked processes per variant,
    as asv pools its ``rounds``: on the H200 a process's per-call time is often 1.5-2x
    another's, so a single-process reference would be a draw, not a reference. Only those
    processes are pinned to the CPU the asv runs were pinned to: pinned here, every later asv
    run (asv, its forkserver, the benchmark process) would share that one CPU (the CPU suite
    read 6-13% slower in the runs after the first). Devices as in TORCH_OVERHEAD_DEVICE; the
    project root must be on sys.path. Their parent first does what asv's forkserver does once
    (``warm_forked_processes``), so each starts as asv's benchmark processes do."""
    import benchmarks.common  # makes the import of torch fork-safe for CUDA first

    os.environ[run.CPP_WRAPPER_ENV_VAR] = "1" if run.runs_cpp_wrapper([class_path]) else "0"
    benchmarks.common.warm_forked_processes()
    medians = {}
    for variant in variants:
        pooled = []
        for _ in range(processes):
            pooled += forked.call(_reference_times, variant, class_path, cpu)
        medians[variant] = statistics.median(pooled)
    return medians


def refuse_unknown_benchmark(project_root, benchmark):
    """True, after printing the one-line error, for a ``--benchmark`` (of figures or harness)
    that is not a host-clock add1 benchmark over the seed's variants."""
    pinned = recorded.pinned_versions(os.path.join(project_root, "benchmarks"))
    if benchmark.endswith(".time_add1") and _class_path(benchmark) in pinned:
        return False
    print(f"error: --benchmark {benchmark}: name a host-clock add1 benchmark over the seed's variants, "
          "e.g. runtime_overhead.RuntimeOverhead.time_add1 or layers.Eager.time_add1", file=sys.stderr)
    return True


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
    os.environ["TORCH_OVERHEAD_DEVICE"] = args.device
    if refuse_unknown_benchmark(args.project_root, args.benchmark):
        return 2
    sys.path.insert(0, args.project_root)  # the reference measures the benchmarks asv ran
    walls, runs, references = [], [], []
    log_dir = os.path.join(args.project_root, ".asv")
    os.makedirs(log_dir, exist_ok=True)
    for i in range(args.runs):
        log_path = os.path.join(log_dir, f"figures-run-{i + 1}.log")
        wall, medians = run_suite(args.python, args.device, args.machine, args.cpu_affinity, args.project_root,
                                  log_path, args.benchmark)
        print(f"run {i + 1}/{args.runs}: {wall:.1f} s wall, {len(medians)} variants", flush=True)
        walls.append(wall)
        runs.append(medians)
        references.append(reference_medians(sorted(medians), args.cpu_affinity, processes=2,
                                            class_path=_class_path(args.benchmark)))

    us = lambda s: f"{s * 1e6:8.2f}"  # noqa: E731
    head = ["requires_grad", "inference_mode", "backward", "dynamic"]
    print()
    print(f"{args.benchmark}, device {args.device}, machine {args.machine}; medians in microseconds per call")
    print(" | ".join(head + [f"asv run {i + 1}" for i in range(len(runs))] + ["spread %", "reference", "asv/ref"]))
    worst_spread, worst_fidelity = 0.0, 0.0
    for variant, (meds, spread, reference, ratio) in compare(runs, references).items():
        worst_spread = max(worst_spread, spread)
        worst_fidelity = max(worst_fidelity, abs(ratio - 1))
        print(" | ".join([str(v) for v in variant] + [us(m) for m in meds]
                         + [f"{spread:6.1f}", us(reference), f"{ratio:5.3f}"]))
    print()
    print("wall seconds per whole run: " + ", ".join(f"{w:.1f}" for w in walls))
    print(f"worst spread across runs: {worst_spread:.1f}% (target <= 5%)")
    print(f"worst fidelity |asv/ref - 1|: {worst_fidelity * 100:.1f}% (target <= 10%)")
    print(json.dumps({"walls": walls, "worst_spread_pct": worst_spread, "worst_fidelity_pct": worst_fidelity * 100}))
    return 0
