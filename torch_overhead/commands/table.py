"""The README's table of per-variant medians, generated from a machine's recorded results.

``python -m torch_overhead table --machine nvidia-h200 [--update-readme]`` prints a
Markdown table (median and interquartile range per valid variant, from the newest
results file of that machine) and, with ``--update-readme``, replaces the block between
``<!-- table:MACHINE -->`` and ``<!-- /table:MACHINE -->`` in README.md.
"""

import os
import re
import sys

from ..lib.recorded import RecordedResultsError, latest_results, result_by_variant
from ..lib.suite import settings

HEADLINE = settings.HEADLINE

NAMES = settings.SEED_PARAM_NAMES


def markdown(results, medians):
    stats_of = result_by_variant(results, HEADLINE, column="stats")
    lines = [
        f"torch {results.commit_hash[:12]}, device {results.env_vars.get(settings.DEVICE_ENV_VAR, '?')}, "
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
        results = latest_results(os.path.join(args.project_root, "results"), args.machine,
                                 os.path.join(args.project_root, "builds.json"))
        if HEADLINE not in results.get_all_result_keys():
            raise RecordedResultsError(f"{args.machine}'s newest build (torch {results.commit_hash[:12]}) has no "
                                       f"{HEADLINE} figures; record them with `python -m torch_overhead run`")
        table = markdown(results, result_by_variant(results, HEADLINE))
        if args.update_readme:
            update_readme(os.path.join(args.project_root, "README.md"), args.machine, table)
    except RecordedResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot update {err.filename} ({err.strerror})", file=sys.stderr)
        return 2
    print(table, end="")
    return 0
