"""How far one job's instruction count moves between counting processes, and what evens it out.

``python -m torch_overhead count-spread [--device cuda] [--variant requires_grad+backward ...]
[--layer inductor] [--per-job 8] [--calls N] [--pin-each]``

Counts each job (a layer and a seed variant) in ``--per-job`` processes of one memory layout,
side by side, as the suite's counting does (``callgrind.count_side_by_side``), each process
with ``--calls`` counted calls per block (default: the suite's for that job, ``counting_plan``).
Prints per job every process's figure (calling thread and all threads), their spread, and,
resampled from them, how far apart two figures of k processes each fall: the repeat that k
processes per figure would give (the suite's figure is the mean of ``LAYOUT_PADS`` times the
job's ``counting_plan`` processes). On CUDA the backward's calling-thread count
moves from call to call (docs/instruction-counts.md); this measures what more calls per
block, more processes, or a CPU of its own for each process buy.
"""

import math
import os
import random
import statistics
import sys
import time

from ..commands.callgrind_diff import DiffError, parse_variant
from ..lib.benchmark_env import benchmark_pythonpath
from ..lib.probe import ProbeError, probe
from ..lib.suite import settings

DEFAULT_VARIANTS = ("requires_grad+backward", "requires_grad+backward+dynamic")
TARGET = 0.1  # percent: how close two runs' counts aim to be (docs/instruction-counts.md, Repeatability)


def pairs_apart(figures, k, draws=4000, seed=0):
    """Sorted |difference| in percent of the mean between two figures of ``k`` processes each,
    drawn without replacement from ``figures`` (one count per process)."""
    rng, mean = random.Random(seed), statistics.mean(figures)
    apart = []
    for _ in range(draws):
        drawn = rng.sample(figures, 2 * k)
        apart.append(abs(statistics.mean(drawn[:k]) - statistics.mean(drawn[k:])) / mean * 100)
    return sorted(apart)


def processes_needed(figures):
    """Processes per figure for two figures to fall within TARGET of each other in 95% of runs,
    were the processes' counts independent and normal: 2 * (1.96 sd / TARGET)^2."""
    sd = statistics.stdev(figures) / statistics.mean(figures) * 100
    return max(1, math.ceil(2 * (1.96 * sd / TARGET) ** 2))


def report(label, figures):
    mean, sd = statistics.mean(figures), statistics.stdev(figures)
    lines = [f"  {label}: mean {mean:,.1f}, sd {sd / mean * 100:.3f}% a process, "
             f"{(max(figures) - min(figures)) / min(figures) * 100:.3f}% from lowest to highest; "
             f"processes a figure for two to repeat within {TARGET}% in 95% of runs: {processes_needed(figures)}"]
    for k in (1, 3, 6, 12):
        if 2 * k <= len(figures):
            apart = pairs_apart(figures, k)
            lines.append(f"    two figures of {k:>2} processes each: median {apart[len(apart) // 2]:.3f}% apart, "
                         f"95th percentile {apart[int(0.95 * len(apart))]:.3f}%, "
                         f"within {TARGET}% in {sum(a < TARGET for a in apart) / len(apart):.0%}")
    return lines


def main(args):
    try:
        variants = [parse_variant(text) for text in (args.variant or DEFAULT_VARIANTS)]
        device = probe(sys.executable).resolve_device(args.device)
    except (DiffError, ProbeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.per_job < 2 or (args.calls is not None and args.calls < 1):
        print("error: --per-job must be at least 2 (a spread needs two processes) and --calls at least 1",
              file=sys.stderr)
        return 2
    sys.path.insert(0, args.project_root)
    os.environ[settings.DEVICE_ENV_VAR] = device
    os.environ["PYTHONPATH"] = benchmark_pythonpath(args.project_root)  # as in a benchmark process
    from benchmarks import callgrind, instruction_count as ic

    jobs = [(args.layer, *variant) for variant in variants]
    # Every process of a job gets the layout of the suite's first one (pad 0): what differs
    # between them is what the counting cannot fix. Names of one length: the cache copy's path counts.
    names = {f"{ic.slot(job)}{n:02d}": job for job in jobs for n in range(args.per_job)}
    calls = {job: args.calls or ic.counting_plan(job)[0] for job in jobs}
    print(f"counting {len(jobs)} job(s) x {args.per_job} processes, {ic.BLOCKS} blocks of "
          f"{'/'.join(str(n) for n in sorted(set(calls.values())))} calls, on {device}, layer {args.layer}, "
          f"{'each process on a CPU of its own' if args.pin_each else 'any CPU'} (minutes)", flush=True)
    start = time.perf_counter()
    try:
        with ic.caches_held():
            ic.warm_inductor_cache(jobs, args.processes)
            counts = callgrind.count_side_by_side(
                {name: ("benchmarks.instruction_count:layer_calls", job) for name, job in names.items()},
                lambda folder: ic.own_cache_env(folder, names[os.path.basename(folder)], 0),
                ic.BLOCKS, lambda name: calls[names[name]], args.processes, args.pin_each)
    except callgrind.Unavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{time.perf_counter() - start:.0f} s")
    for job in jobs:
        own = [counts[name] for name, j in names.items() if j == job]
        counted = [c for c in own if "calling_thread" in c]
        print(f"\n{settings.flags_name(job[1:])} at layer {job[0]}, {calls[job]} calls a block: "
              f"{len(counted)} of {len(own)} processes counted")
        for skipped in {c["skip"] for c in own if "skip" in c}:
            print(f"  skipped: {skipped}")
        if len(counted) < 2:
            continue
        for key, label in (("calling_thread", "calling thread"), ("all_threads", "all threads")):
            figures = [c[key] for c in counted]
            print("\n".join(report(label, figures)))
            print(f"    per process: {', '.join(f'{f:,.0f}' for f in sorted(figures))}")
    return 0
