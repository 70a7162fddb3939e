"""Repeatability and cost of the instruction counts: the suite's callgrind counting run twice (or more).

``python -m torch_overhead counts [--device cuda] [--runs 2] [--processes N]`` runs the
counting of ``benchmarks/instruction_count.py`` ``--runs`` times (each run counts every
seed variant, up to ``--processes`` at once; default one per CPU) and prints each run's
wall time, then per variant each run's instructions per call on the calling thread (the
seed's figure) and the spread, (max - min) / min, whose target is 0.1%, and the count
over all threads, and how far apart the processes that each figure averages read (one or
more per memory layout, ``LAYOUT_PADS``; first counted run), then each layout's mean run by
run. ``--recorded MACHINE`` sets the counts that machine's newest results hold (the main
command's run) beside them, as one more run.
"""

import os
import statistics
import sys
import time

from ..lib.benchmark_env import benchmark_pythonpath
from ..lib.recorded import RecordedResultsError, latest_results, result_by_variant
from ..lib.suite import COUNTS, settings



def main(args):
    sys.path.insert(0, args.project_root)
    os.environ[settings.DEVICE_ENV_VAR] = "cpu" if args.device == "auto" else args.device
    # The counting processes' PYTHONPATH as in a benchmark process: the same environment, the same counts.
    os.environ["PYTHONPATH"] = benchmark_pythonpath(args.project_root)
    from benchmarks import callgrind
    from benchmarks.instruction_count import LAYOUT_PADS, count_under_callgrind, headline_jobs

    runs, names = [], []
    if args.recorded:
        try:
            results = latest_results(args.project_root, args.recorded)
        except RecordedResultsError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        calling = result_by_variant(results, COUNTS) if COUNTS in results.get_all_result_keys() else {}
        every = result_by_variant(results, COUNTS + "_all_threads") if calling else {}
        if not calling:
            print(f"error: {args.recorded}'s newest results hold no {COUNTS} figures", file=sys.stderr)
            return 2
        runs.append({v: {"calling_thread": c, "all_threads": every.get(v, float("nan"))} for v, c in calling.items()})
        names.append("recorded")
    for number in range(args.runs):
        start = time.perf_counter()
        try:
            counted = count_under_callgrind(headline_jobs(), processes=args.processes)
            runs.append({job[1:]: counts for job, counts in counted.items()})  # by seed variant
        except callgrind.Unavailable as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        names.append(f"run {number + 1}")
        print(f"run {number + 1}/{args.runs}: {time.perf_counter() - start:.0f} s; calling thread per call: "
              + ", ".join(f"{settings.flags_name(v)} {c.get('calling_thread', float('nan')):,.0f}" for v, c in runs[-1].items()),
              flush=True)
    print(" | ".join(settings.SEED_PARAM_NAMES) + " | "
          + " | ".join(names) + f" | spread % | all threads ({names[0]}) | processes apart %")
    worst = 0.0
    for variant in settings.VALID_VARIANTS:
        counts = [run.get(variant, {}).get("calling_thread") for run in runs]
        if None in counts:
            reasons = "; ".join(run.get(variant, {}).get("skip", "not recorded") for run in runs
                                if "calling_thread" not in run.get(variant, {}))
            print(" | ".join(str(v) for v in variant) + f" | skipped: {reasons}")
            worst = float("inf")
            continue
        spread = (max(counts) - min(counts)) / min(counts) * 100
        worst = max(worst, spread)
        layouts = runs[-args.runs].get(variant, {}).get("layouts", [float("nan")])
        print(" | ".join(str(v) for v in variant) + " | " + " | ".join(f"{c:,.0f}" for c in counts)
              + f" | {spread:.3f} | {runs[0][variant].get('all_threads', float('nan')):,.0f}"
              + f" | {(max(layouts) - min(layouts)) / min(layouts) * 100:.2f}")
    print(f"worst spread: {worst:.3f}% (target <= 0.1%)")
    # Whether each layout's offset repeats between runs, or moves with them.
    print("calling thread per layout (" + ", ".join(f"pad {pad}" for pad in LAYOUT_PADS) + "), run by run:")
    for variant in settings.VALID_VARIANTS:
        per_run = ["/".join(f"{statistics.mean(group):,.0f}"
                            for group in by_layout(run[variant]["layouts"], len(LAYOUT_PADS)))
                   for run in runs[-args.runs:] if "layouts" in run.get(variant, {})]
        print(f"  {settings.flags_name(variant)}: " + "; ".join(per_run))
    return 0


def by_layout(processes, layouts):
    """A job's per-process counts (``mean_over_layouts``' ``layouts``, layout by layout) split
    into one group per layout."""
    size = len(processes) // layouts
    return [processes[k * size:(k + 1) * size] for k in range(layouts)]
