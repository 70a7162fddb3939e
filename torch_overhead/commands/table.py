"""The README's table of per-variant medians, generated from a machine's recorded results.

``python -m torch_overhead table --machine nvidia-h200 [--update-readme]`` prints a
Markdown table (median and interquartile range per valid variant, from the newest
results file of that machine) and, with ``--update-readme``, replaces the block between
``<!-- table:MACHINE -->`` and ``<!-- /table:MACHINE -->`` in README.md.

``--metric instructions`` tabulates the instruction counts instead (``--slow`` runs): per
variant, the calling thread's count (the seed's metric), the count over all threads, the
seed's published count and the ratio of the two (block ``table:MACHINE:instructions``).
"""

import os
import re
import sys

from ..lib.recorded import RecordedResultsError, build_label, latest_results, result_by_variant
from ..lib.suite import COUNTS, settings

HEADLINE = settings.HEADLINE
# The seed's expected instruction counts as PyTorch publishes them (PR 163866,
# pr_time_benchmarks/expected_results.csv: CUDA, an sm75 machine, bare metal); it has no
# requires_grad+inference_mode rows.
SEED_PUBLISHED = {
    (False, False, False, False): 222_645, (False, True, False, False): 234_998,
    (True, False, False, False): 293_556, (True, False, True, False): 78_181,
    (False, False, False, True): 234_870, (False, True, False, True): 248_711,
    (True, False, False, True): 309_979, (True, False, True, True): 77_599,
}

NAMES = settings.SEED_PARAM_NAMES


def markdown(results, medians, label):
    stats_of = result_by_variant(results, HEADLINE, column="stats")
    lines = [
        f"{label}, device {results.env_vars.get(settings.DEVICE_ENV_VAR, '?')}, "
        f"machine {results.params['machine']}; microseconds per call (host time)",
        "",
        "| " + " | ".join(NAMES) + " | median | 25%-75% |",
        "|" + " --- |" * (len(NAMES) + 2),
    ]
    for variant, median in sorted(medians.items()):
        stats = stats_of.get(variant) or {}
        spread = f"{stats['q_25'] * 1e6:.1f}-{stats['q_75'] * 1e6:.1f}" if "q_25" in stats else "n/a"
        lines.append("| " + " | ".join(str(v) for v in variant) + f" | {median * 1e6:.1f} | {spread} |")
    return "\n".join(lines) + "\n"


def counts_markdown(results, label):
    calling = result_by_variant(results, COUNTS)
    every = result_by_variant(results, COUNTS + "_all_threads")
    lines = [
        f"{label}, device {results.env_vars.get(settings.DEVICE_ENV_VAR, '?')}, "
        f"machine {results.params['machine']}; instructions per call (callgrind), beside the seed's published counts",
        "",
        "| variant | calling thread | all threads | seed (published) | calling / seed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant, count in sorted(calling.items()):
        seed = SEED_PUBLISHED.get(variant)
        cells = [f"{count:,.0f}", f"{every[variant]:,.0f}" if variant in every else "n/a",
                 f"{seed:,}" if seed else "n/a", f"{count / seed:.2f}" if seed else "n/a"]
        lines.append(f"| {settings.flags_name(variant)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def update_readme(readme, machine, table):
    start, end = f"<!-- table:{machine} -->", f"<!-- /table:{machine} -->"
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise RecordedResultsError(f"{readme} has no {start} ... {end} block to update")
    with open(readme, "w", encoding="utf-8") as f:
        f.write(pattern.sub(lambda _: f"{start}\n{table}{end}", text))


def main(args):
    try:
        results = latest_results(args.project_root, args.machine)
        label = build_label(args.project_root, results)
        name = COUNTS if args.metric == "instructions" else HEADLINE
        figures = result_by_variant(results, name) if name in results.get_all_result_keys() else {}
        if not figures:
            how = "run --slow` (valgrind installed)" if name == COUNTS else "run`"
            raise RecordedResultsError(f"{args.machine}'s newest build ({label}) has no "
                                       f"{name} figures; record them with `python -m torch_overhead {how}")
        if name == COUNTS:
            table, block = counts_markdown(results, label), f"{args.machine}:instructions"
        else:
            table, block = markdown(results, figures, label), args.machine
        if args.update_readme:
            update_readme(os.path.join(args.project_root, "README.md"), block, table)
    except RecordedResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot update {err.filename} ({err.strerror})", file=sys.stderr)
        return 2
    print(table, end="")
    return 0
