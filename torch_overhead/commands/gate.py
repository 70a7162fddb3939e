"""A CI gate over recorded results, in the spirit of PyTorch's ``check_results.py``.

``python -m torch_overhead gate --expected expected.csv --machine M [--build NAME]``

The expected file (``lib/expected.py``) has PyTorch's columns,
``benchmark,metric,expected,noise_margin``: metric ``us_per_call`` (asv medians) or
``instruction_count`` (the seed's metric, ``--slow`` runs). A result outside
``expected * (1 +- margin)`` fails either way: slower is a regression, faster is an
improvement that needs the baseline updated. The gate writes a suggested expected file
with the measured values of every row out of margin (``--suggest``), and a Markdown
report fit for a pull-request comment (``--report``).

Exit status: 0 all within margin, 1 some out of margin, 2 some expected benchmark has no
result (failed, skipped or not run), or bad input. ``--init`` writes an expected file
from the results instead of checking one.

``--baseline-python OLD/bin/python`` asks instead of a stored number a baseline build run in
the same minutes: the gate runs ``compare`` (side A the baseline, side B ``--python``, both at
once in ``--jobs`` lanes) and fails on its verdicts: 1 when a variant is slower, 2 when one
stays unknown within ``--budget-seconds`` (no verdict is not a pass) or compare failed.
On a noisy cloud machine, where stored medians drift between runs, this is the gate to use.
"""

import os
import subprocess
import sys

from ..lib import expected
from ..lib.paired import read_report as paired_report
from ..lib.recorded import RecordedResultsError, build_label, results_of_build
from . import compare

UNITS = {"us_per_call": "us", "instruction_count": "instructions"}


class GateInputError(RuntimeError):
    pass


def report(checked, title):
    bad = [r for r in checked if r["status"] != "ok"]
    lines = [f"### {title}", "",
             f"{len(checked) - len(bad)} of {len(checked)} within margin." + (
                 " Out of margin or failed:" if bad else ""), ""]
    if bad:
        lines += ["| benchmark | metric | expected | measured | change | margin | status |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in bad:
            got = "n/a" if r["measured"] is None else f"{r['measured']:,.2f}"
            change = "n/a" if r["measured"] is None else f"{(r['measured'] / r['expected'] - 1) * 100:+.2f}%"
            lines.append(f"| `{r['benchmark']}` | {r['metric']} | {r['expected']:,.2f} | {got} | {change} | "
                         f"{r['noise_margin'] * 100:.1f}% | {r['status']} |")
        if any(r["status"] == "improvement" for r in bad):
            lines += ["", "Improvements are failures too: update the expected file (a suggested one was written)."]
    return "\n".join(lines) + "\n"


def load_results(args):
    try:
        return results_of_build(args.project_root, args.machine, args.build)
    except RecordedResultsError as err:
        raise GateInputError(str(err))


def init(path, values, margin):
    """Write an expected file with every measured figure of a gated metric."""
    if margin is not None and not 0 < margin < 1:
        raise GateInputError(f"--margin {margin}: give a fraction between 0 and 1 (0.1 = 10%)")
    rows = [{"benchmark": name, "metric": metric, "expected": value,
             "noise_margin": margin if margin is not None else expected.DEFAULT_MARGINS[metric]}
            for name, (metric, value) in sorted(values.items()) if value is not None]
    expected.write(path, rows)
    print(f"wrote {len(rows)} expected rows to {path}")


def paired(args):
    """The gate against ``--baseline-python``, through compare in a subprocess (its own command,
    with its own lock, state and resume); returns the exit status."""
    report_path = args.report or os.path.join(args.project_root, ".asv", "gate-paired-report.md")
    os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
    cmd = compare.command(args.project_root, args.baseline_python, args.python, args.machine, args.device,
                          args.cpu_affinity, args.budget_seconds, report_path, args.bench or (), args.attribute,
                          "--pairing", "simultaneous", "--jobs", str(args.jobs))
    status = subprocess.call(cmd)
    if status not in (0, 1) or not os.path.exists(report_path):
        print(f"error: compare exited {status} (above); the gate has no verdict", file=sys.stderr)
        return 2
    verdicts = {name: verdict for name, (_, _, verdict) in paired_report(report_path).items()}
    slower = [name for name, verdict in verdicts.items() if verdict == "slower"]
    unknown = [name for name, verdict in verdicts.items() if verdict.startswith("unknown")]
    untimed = sum(verdict.startswith(compare.SHARED_CPU_BACKWARD) for verdict in verdicts.values())
    print(f"gate against {args.baseline_python}: {len(slower)} slower, {len(unknown)} unknown of {len(verdicts)} "
          + (f"({untimed} backward neither timed on a shared CPU nor counted: gate them by instruction counts) "
             if untimed else "")
          + f"(report: {report_path})")
    if slower:
        return 1
    if unknown:
        print("error: no verdict for " + ", ".join(unknown) + "; rerun the same command to add rounds "
              "(it resumes), or raise --budget-seconds", file=sys.stderr)
        return 2
    return 0


def main(args):
    if args.baseline_python:
        return paired(args)
    try:
        results = load_results(args)
        values = expected.measured(results)
        if args.init:
            init(args.init, values, args.margin)
            return 0
        if not args.expected:
            raise GateInputError("give --expected FILE to check, or --init FILE to write one")
        checked = expected.check(expected.read(args.expected), values)
        title = f"torch.compile overhead gate: {args.machine}, {build_label(args.project_root, results)}"
        text = report(checked, title)
        if args.report:
            with open(args.report, "w", encoding="utf-8") as f:
                f.write(text)
        out_of_margin = [r for r in checked if r["status"] in ("regression", "improvement")]
        suggest = args.suggest or os.path.splitext(args.expected)[0] + ".suggested.csv"
        if out_of_margin:
            expected.write(suggest, [r | ({"expected": r["measured"]} if r in out_of_margin else {}) for r in checked])
    except OSError as err:
        print(f"error: cannot write {err.filename} ({err.strerror}); does its folder exist?", file=sys.stderr)
        return 2
    except (GateInputError, RecordedResultsError, expected.ExpectedFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text, end="")
    if out_of_margin:
        print(f"suggested expected file: {suggest}")
    if any(r["status"] == "failed" for r in checked):
        return 2
    return 1 if out_of_margin else 0
