"""Two asv results files of one build, machine and environment, each recorded by a run that
selected other variants (``--bench``), merged into one.

In one ``results/`` folder asv merges a partial run into the file already there
(``Results.add_result`` keeps the variants the run did not select). Runs in separate folders,
such as cluster jobs each on its own clone or calls of a lent machine each on a fresh copy,
each write the whole file with NaN for every variant they did not run, and asv has no command
to merge such files; this does what its run would have done, field by field of the file's own
``result_columns``, and refuses where both files measured one variant differently.

A run on a copy of a project that already held results writes those too, beside the variants
it measured: ``select`` keeps only the variants that run selected, and ``merge(replace=True)``
lets them replace the recorded ones, as ``run --replace`` would have in the project itself.
"""

import itertools
import os

from asv.util import is_na, write_json

from . import recorded

# Columns holding one entry per variant (the rest describe the benchmark as a whole).
PER_VARIANT = ("result", "stats_ci_99_a", "stats_ci_99_b", "stats_q_25", "stats_q_75",
               "stats_number", "stats_repeat", "samples")


class ResultConflict(ValueError):
    pass


def select(data, matches):
    """``data`` (parsed JSON, left unchanged) as a run that selected only the variants whose asv
    name ``name(params)`` ``matches`` (a predicate) would have written it: NaN for the others,
    and no row for a benchmark left without any."""
    columns = data["result_columns"]
    rows = {}
    for name, row in data["results"].items():
        fields = dict(itertools.zip_longest(columns, row))
        kept = [matches(recorded.variant_name(name, params)) for params in itertools.product(*fields["params"])]
        if not any(kept):
            continue
        for column in PER_VARIANT:
            if fields[column] is not None:
                blank = float("nan") if column == "result" else None
                fields[column] = [value if keep else blank for value, keep in zip(fields[column], kept)]
        rows[name] = [fields[column] for column in columns][:len(row)]
    return dict(data, results=rows)


def merge(ours, theirs, replace=False):
    """``(merged, added, replaced)``: ``ours`` (parsed JSON) with every variant that only
    ``theirs`` measured, and how many variants that added; with ``replace``, also every variant
    both measured with other values, taken from ``theirs``, and how many. Both inputs are left
    unchanged. Raises ResultConflict naming what differs: a field of the file, a benchmark's
    version or parameters, or (without ``replace``) a variant both measured with other values."""
    for key in sorted((set(ours) | set(theirs)) - {"results", "durations"}):
        if ours.get(key) != theirs.get(key):
            raise ResultConflict(f"their {key!r} differs")
    columns = ours["result_columns"]
    merged = dict(ours, results=dict(ours["results"]), durations=dict(ours["durations"]))
    for key, seconds in theirs["durations"].items():
        merged["durations"].setdefault(key, seconds)
    added = replaced = 0
    for name, their_row in theirs["results"].items():
        if name not in merged["results"]:
            merged["results"][name] = their_row
            added += sum(not is_na(value) for value in their_row[0] or [])
            continue
        a, b = (dict(itertools.zip_longest(columns, row)) for row in (merged["results"][name], their_row))
        if (a["version"], a["params"]) != (b["version"], b["params"]):
            raise ResultConflict(f"{name} was recorded by two versions of the benchmark")
        row = {column: list(a[column]) if isinstance(a[column], list) else a[column] for column in columns}
        variants = list(itertools.product(*a["params"]))
        gained = 0
        for i, (mine, new) in enumerate(zip(a["result"] or [None] * len(variants), b["result"] or [])):
            if is_na(new):
                continue
            if not is_na(mine):
                if mine == new:
                    continue
                if not replace:
                    raise ResultConflict(f"both measured {recorded.variant_name(name, variants[i])}: {mine} and {new}")
                replaced += 1
            else:
                added += 1
            for column in PER_VARIANT:
                if b[column] is not None:
                    row[column] = row[column] or [None] * len(variants)
                    row[column][i] = b[column][i]
            gained += 1
        if not gained:  # nothing of theirs to add: this benchmark's row stays as it is
            continue
        row["started_at"] = max((t for t in (a["started_at"], b["started_at"]) if t is not None), default=None)
        row["duration"] = (a["duration"] or 0) + (b["duration"] or 0)
        merged_row = [row[column] for column in columns]
        while merged_row and merged_row[-1] is None:  # asv leaves trailing empty columns out
            merged_row.pop()
        merged["results"][name] = merged_row
    return merged, added, replaced


def write(path, data):
    """As asv writes a results file (``Results.save``), through a temporary file so that an
    interruption leaves the old file whole."""
    write_json(path + ".tmp", data, api_version=data["version"], compact=True)
    os.replace(path + ".tmp", path)
