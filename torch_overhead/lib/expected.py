"""Expected results in PyTorch's ``check_results.py`` format, and the check against them.

One row per benchmark variant: ``benchmark,metric,expected,noise_margin``, the benchmark
spelled as asv spells a variant (``name(False, True, ...)``). Two metrics:
``us_per_call`` (a ``time_*`` benchmark's asv median, microseconds) and
``instruction_count`` (``track_instructions``, instructions per call). A value outside
``expected * (1 +- noise_margin)`` is out of margin either way.
"""

import csv
import itertools
import math

from .recorded import variant_name

FIELDS = ["benchmark", "metric", "expected", "noise_margin"]
# Default noise margins: PyTorch's check_results.py mostly uses 0.1 for its instruction
# counts; counts here repeat to the instruction, so 1.5% is enough for them, while wall
# times drift by more (docs/gate-and-bisect.md).
DEFAULT_MARGINS = {"us_per_call": 0.1, "instruction_count": 0.015}


class ExpectedFileError(RuntimeError):
    """The expected file is unreadable or has no usable rows; the message says which."""


def metric_of(benchmark):
    """The gate metric of an asv benchmark name, or None for figures the gate does not check."""
    method = benchmark.split("(", 1)[0].rsplit(".", 1)[-1]
    if method.startswith("time_"):
        return "us_per_call"
    if method == "track_instructions":
        return "instruction_count"
    return None


def measured(results):
    """``{"name(params)": (metric, value)}`` for every variant of a gated benchmark, the value in
    the metric's unit, or None when the variant failed. Skipped variants (NaN) are left out."""
    values = {}
    for name in results.get_all_result_keys():
        metric = metric_of(name)
        if metric is None:
            continue
        scale = 1e6 if metric == "us_per_call" else 1
        params = results.get_result_params(name)
        for combo, value in zip(itertools.product(*params), results.get_result_value(name, params)):
            if value is None or value == value:
                values[variant_name(name, combo)] = (metric, None if value is None else value * scale)
    return values


def read(path):
    """The rows of an expected file, checked; raises ExpectedFileError naming the line."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError) as err:
        raise ExpectedFileError(f"cannot read {path} ({getattr(err, 'strerror', None) or err})")
    missing = [c for c in FIELDS if c not in columns]
    if missing:
        raise ExpectedFileError(f"{path}: no column {', '.join(missing)}; the header must be {','.join(FIELDS)}")
    if not rows:
        raise ExpectedFileError(f"{path} has no rows to check; write one with `gate --init {path}`")
    for number, row in enumerate(rows, 2):
        try:
            if row["metric"] not in DEFAULT_MARGINS:
                raise ValueError(f"metric {row['metric']!r}: use {' or '.join(DEFAULT_MARGINS)}")
            expected, margin = _number(row["expected"]), _number(row["noise_margin"])
            if not (math.isfinite(expected) and expected > 0):
                raise ValueError(f"expected {row['expected']!r}: give a finite value above 0")
            if not 0 < margin < 1:
                raise ValueError(f"noise_margin {row['noise_margin']!r}: give a fraction between 0 and 1 (0.1 = 10%)")
        except (TypeError, ValueError) as err:
            raise ExpectedFileError(f"{path}:{number}: {err}")
        row["expected"], row["noise_margin"] = expected, margin
    return rows


def _number(text):
    """The cell as a float; NaN (refused by the checks, which name the cell) when it is none."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def write(path, rows):
    """Write rows (expected values as numbers) in the file format; raises ExpectedFileError."""
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                digits = 2 if row["metric"] == "us_per_call" else 0
                writer.writerow({**row, "expected": f"{row['expected']:.{digits}f}"})
    except OSError as err:
        raise ExpectedFileError(f"cannot write {path} ({err.strerror}); does its folder exist?")


def check(rows, values):
    """Rows with ``measured`` and ``status`` (ok, regression, improvement, failed) added;
    ``values`` as ``measured`` returns them. A row whose benchmark has a figure of another
    metric is failed: the file names the wrong metric for it."""
    checked = []
    for row in rows:
        metric, value = values.get(row["benchmark"], (row["metric"], None))
        if value is None or metric != row["metric"]:
            status, value = "failed", None
        elif value > row["expected"] * (1 + row["noise_margin"]):
            status = "regression"
        elif value < row["expected"] * (1 - row["noise_margin"]):
            status = "improvement"
        else:
            status = "ok"
        checked.append({**row, "measured": value, "status": status})
    return checked
