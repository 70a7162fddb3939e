"""A CI gate over recorded results, in the spirit of PyTorch's ``check_results.py``.

``python -m torch_overhead gate --expected expected.csv --machine M [--build NAME]``

The expected file has PyTorch's columns, ``benchmark,metric,expected,noise_margin``: one
row per benchmark variant (asv's ``name(params)`` spelling), the metric ``us_per_call``
(the asv median, microseconds) and a relative margin (0.1 = 10%). A result outside
``expected * (1 +- margin)`` fails either way: slower is a regression, faster is an
improvement that needs the baseline updated. The gate writes a suggested expected file
with the measured values of every row out of margin (``--suggest``), and a Markdown
report fit for a pull-request comment (``--report``).

Exit status: 0 all within margin, 1 some out of margin, 2 some expected benchmark has no
result (failed, skipped or not run), or bad input. ``--init`` writes an expected file
from the results instead of checking one.
"""

import csv
import itertools
import os
import sys

from asv.repo import NoSuchNameError
from asv.util import UserError

from .asv_repo import TorchBuildIndex
from .recorded import RecordedResultsError, latest_results, results_for_commit, variant_name

METRIC = "us_per_call"
FIELDS = ["benchmark", "metric", "expected", "noise_margin"]


class GateInputError(RuntimeError):
    pass


def measured(results):
    """``{"name(params)": microseconds}`` for every variant with a result (None when failed)."""
    values = {}
    for name in results.get_all_result_keys():
        params = results.get_result_params(name)
        combos = [variant_name(name, c) for c in itertools.product(*params)]
        for key, value in zip(combos, results.get_result_value(name, params)):
            if value is None or value == value:  # NaN = skipped by design: not a gate row
                values[key] = None if value is None else value * 1e6
    return values


def read_expected(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise GateInputError(f"cannot read {path} ({err.strerror})")
    for number, row in enumerate(rows, 2):
        try:
            if row["metric"] != METRIC:
                raise ValueError(f"metric {row['metric']!r}, expected {METRIC!r}")
            row["expected"], row["noise_margin"] = float(row["expected"]), float(row["noise_margin"])
        except (KeyError, TypeError, ValueError) as err:
            raise GateInputError(f"{path}:{number}: malformed row ({err}); columns are {','.join(FIELDS)}")
    return rows


def write_expected(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "expected": f"{row['expected']:.2f}"})


def check(rows, values):
    """Rows with ``measured`` and ``status`` (ok, regression, improvement, failed) added."""
    checked = []
    for row in rows:
        value = values.get(row["benchmark"])
        if value is None:
            status = "failed"
        elif value > row["expected"] * (1 + row["noise_margin"]):
            status = "regression"
        elif value < row["expected"] * (1 - row["noise_margin"]):
            status = "improvement"
        else:
            status = "ok"
        checked.append({**row, "measured": value, "status": status})
    return checked


def report(checked, title):
    bad = [r for r in checked if r["status"] != "ok"]
    lines = [f"### {title}", "",
             f"{len(checked) - len(bad)} of {len(checked)} within margin." + (
                 " Out of margin or failed:" if bad else ""), ""]
    if bad:
        lines += ["| benchmark | expected us | measured us | change | margin | status |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in bad:
            got = "n/a" if r["measured"] is None else f"{r['measured']:.2f}"
            change = "n/a" if r["measured"] is None else f"{(r['measured'] / r['expected'] - 1) * 100:+.1f}%"
            lines.append(f"| `{r['benchmark']}` | {r['expected']:.2f} | {got} | {change} | "
                         f"{r['noise_margin'] * 100:.0f}% | {r['status']} |")
        if any(r["status"] == "improvement" for r in bad):
            lines += ["", "Improvements are failures too: update the expected file (a suggested one was written)."]
    return "\n".join(lines) + "\n"


def load_results(args):
    results_dir = os.path.join(args.project_root, "results")
    if not args.build:
        return latest_results(results_dir, args.machine)
    # Names resolve as everywhere else in asv: the build-index repository's own lookup.
    try:
        commit = TorchBuildIndex(os.path.join(args.project_root, "builds.json"), None).get_hash_from_name(args.build)
    except NoSuchNameError:
        raise GateInputError(f"build {args.build!r} is not in builds.json; name a recorded version or commit")
    except UserError as err:  # the index itself is unreadable
        raise GateInputError(str(err))
    return results_for_commit(results_dir, args.machine, commit)


def main(args):
    try:
        results = load_results(args)
        values = measured(results)
        if args.init:
            rows = [{"benchmark": k, "metric": METRIC, "expected": v, "noise_margin": args.margin}
                    for k, v in sorted(values.items()) if v is not None]
            write_expected(args.init, rows)
            print(f"wrote {len(rows)} expected rows to {args.init}")
            return 0
        if not args.expected:
            raise GateInputError("give --expected FILE to check, or --init FILE to write one")
        checked = check(read_expected(args.expected), values)
    except (GateInputError, RecordedResultsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    title = f"torch.compile overhead gate: {args.machine}, torch {results.commit_hash[:12]}"
    text = report(checked, title)
    print(text, end="")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(text)
    out_of_margin = [r for r in checked if r["status"] in ("regression", "improvement")]
    if out_of_margin:
        suggest = args.suggest or os.path.splitext(args.expected)[0] + ".suggested.csv"
        write_expected(suggest, [{k: r[k] for k in FIELDS} | (
            {"expected": r["measured"]} if r in out_of_margin else {}) for r in checked])
        print(f"suggested expected file: {suggest}")
    if any(r["status"] == "failed" for r in checked):
        return 2
    return 1 if out_of_margin else 0
