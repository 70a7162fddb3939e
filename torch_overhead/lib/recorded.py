"""Results already recorded: checks made before asv may write next to them, and read-back.

asv merges a new run into the results file of the same commit and environment and
silently drops entries whose benchmark ``version`` changed, and it stops with a
traceback on a file it cannot parse. Both would lose or hide recorded history, so the
runner refuses to start instead, naming the file and what to do.

Current benchmark versions are read from the benchmark sources with ``ast`` rather
than by importing them: importing means importing torch (seconds), and every
benchmark class must pin a literal ``version`` anyway for ``asv publish`` to keep its
history (a test enforces this).
"""

import ast
import glob
import itertools
import json
import os
import re

from asv.results import Results

from . import builds
from .suite import settings


def variant_name(benchmark, params):
    """One variant as asv spells it, ``name(False, True, ...)``: what ``asv run --bench``
    matches and gate files list. A benchmark without parameters is its bare name."""
    return f"{benchmark}({', '.join(map(str, params))})" if params else benchmark


class RecordedResultsError(RuntimeError):
    pass


def recorded_variants(results):
    """``(variant name, value, stats)`` for every variant of every benchmark in one results file;
    value None: failed there, NaN: skipped."""
    for name in results.get_all_result_keys():
        params = results.get_result_params(name)
        values = results.get_result_value(name, params)
        stats = results.get_result_stats(name, params)
        for combo, value, stat in zip(itertools.product(*params), values if params else [values],
                                      stats if params else [stats]):
            yield variant_name(name, combo), value, stat


def suite_variants(results_dir):
    """Every variant of the suite as asv last listed it (``results/benchmarks.json``, written by
    every run), or None before any run; unreadable is RecordedResultsError with the fix."""
    path = os.path.join(results_dir, "benchmarks.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            suite = json.load(f)
        return {variant_name(name, combo) for name, benchmark in suite.items() if isinstance(benchmark, dict)
                for combo in itertools.product(*benchmark["params"])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise RecordedResultsError(f"{path} is unreadable ({err}); restore it with `git checkout -- {path}`")


def pinned_versions(benchmark_dir):
    """``{"module.Class": version}`` for every benchmark class with a literal ``version``."""
    versions = {}
    for path in sorted(glob.glob(os.path.join(benchmark_dir, "*.py"))):
        module = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "version" for t in stmt.targets)
                    and isinstance(stmt.value, ast.Constant)
                ):
                    versions[f"{module}.{node.name}"] = stmt.value.value
    return versions


def check(results_dir, machine, commit, env_name, benchmark_dir):
    """Raise if any results file of ``machine`` is unreadable, or if the file this run
    would merge into holds results of another benchmark version."""
    target = None
    for path in sorted(glob.glob(os.path.join(results_dir, machine, "*.json"))):
        if os.path.basename(path) == "machine.json":
            continue
        results = _load(path)
        if results.commit_hash == commit and results.env_name == env_name:
            target = (path, results)
    if target is None:
        return
    path, results = target
    pinned = pinned_versions(benchmark_dir)
    for name, recorded in results.benchmark_version.items():
        class_name = name.rsplit(".", 1)[0]
        if class_name in pinned and recorded != pinned[class_name]:
            raise RecordedResultsError(
                f"{path} holds {name} at version {recorded!r}, the suite is at {pinned[class_name]!r}; "
                "a new run would drop those results: move the file aside first, or drop that benchmark's "
                f"old results from every file with `python -m asv rm -y benchmark={name}` to re-record it"
            )


def _load(path):
    try:
        return Results.load(path)
    except Exception as err:  # asv raises several types for a bad file
        raise RecordedResultsError(
            f"{path} is corrupt ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            f"restore it with `git checkout -- {path}` or move it aside"
        ) from err


def latest_results(project_root, machine):
    """The results of ``machine``'s newest build in the project: by the build index's date
    (``builds.json``) where it lists the build, else by the date asv recorded with the results;
    never by a file's modification time, which a checkout or a copy sets at random."""
    results_dir = os.path.join(project_root, "results")
    paths = [p for p in sorted(glob.glob(os.path.join(results_dir, machine, "*.json")))
             if os.path.basename(p) != "machine.json"]
    if not paths:
        raise RecordedResultsError(f"no results recorded for machine {machine!r} under {results_dir}")
    try:
        dates = {b["commit"]: builds.timestamp_ms(b["date"])
                 for b in builds.load(os.path.join(project_root, "builds.json"))}
    except builds.BuildIndexError as err:
        raise RecordedResultsError(str(err)) from err
    loaded = [_load(p) for p in paths]
    # of one build's environments, the default pinning's (an untagged name) before the others
    return max(loaded, key=lambda r: (dates.get(r.commit_hash, r.date or 0), r.commit_hash,
                                      settings.PINNING_ENV_VAR not in r.env_name))


def results_of_build(project_root, machine, build=None):
    """``machine``'s results of ``build`` (a version or commit, resolved as asv resolves names:
    the build index's own lookup), or of its newest build when None."""
    from asv.repo import NoSuchNameError
    from asv.util import UserError

    from ..asv_plugins.repo import TorchBuildIndex

    if not build:
        return latest_results(project_root, machine)
    try:
        commit = TorchBuildIndex(os.path.join(project_root, "builds.json"), None).get_hash_from_name(build)
    except NoSuchNameError:
        raise RecordedResultsError(f"build {build!r} is not in builds.json; name a recorded version or commit")
    except UserError as err:  # the index itself is unreadable
        raise RecordedResultsError(str(err))
    return results_for_commit(os.path.join(project_root, "results"), machine, commit)


def results_for_commit(results_dir, machine, commit):
    """The results file of ``machine`` for one build (the newest, if several environments)."""
    paths = sorted(glob.glob(os.path.join(results_dir, machine, f"{commit[:8]}-*.json")))
    found = [r for r in map(_load, paths) if r.commit_hash == commit]
    if not found:
        raise RecordedResultsError(f"no results for commit {commit[:12]} on machine {machine!r}")
    return found[-1]


def build_label(project_root, results):
    """``torch 2.13.0+cpu @ cf30153c4c13``: the build a results file holds, by the version
    the build index gives its commit (the bare commit when the index lacks it)."""
    from asv.util import UserError

    from ..asv_plugins.repo import TorchBuildIndex

    commit = results.commit_hash
    try:
        tag = TorchBuildIndex(os.path.join(project_root, "builds.json"), None).get_name_from_hash(commit)
    except UserError as err:  # the index itself is unreadable
        raise RecordedResultsError(str(err)) from err
    return f"torch {tag[len('torch-'):]} @ {commit[:12]}" if tag else f"torch {commit[:12]}"


def result_by_variant(results, benchmark, column=None):
    """``{(True, False, ...): value}`` for one benchmark; ``()`` keys a benchmark without
    parameters. Skipped (NaN) and failed (None) variants are left out. ``column``
    "stats" gives asv's statistics (quantiles) instead of the median."""
    params = results.get_result_params(benchmark)
    get = results.get_result_stats if column == "stats" else results.get_result_value
    values = get(benchmark, params)
    combos = itertools.product(*params)
    return {
        tuple(p == "True" for p in combo): v
        for combo, v in zip(combos, values)
        if v is not None and (column == "stats" or v == v)
    }


def latest_medians(project_root, machine, benchmark):
    """``(results, {variant: median seconds})`` from ``machine``'s newest build."""
    results = latest_results(project_root, machine)
    return results, result_by_variant(results, benchmark)


def host_clock_add1(benchmark_dir, pattern):
    """The host-clock add1 benchmark over the seed's variants (``module.Class.time_add1``) that
    ``pattern`` selects (``select_one``), as ``figures`` and ``harness`` need."""
    names = [f"{cls}.time_add1" for cls in pinned_versions(benchmark_dir)
             if cls.split(".")[0] in ("runtime_overhead", "layers")]
    return select_one(pattern, names, "host-clock add1 benchmark")


def select_one(pattern, names, what="benchmark"):
    """The one name of ``names`` that ``pattern`` selects, as ``--bench`` does everywhere: an exact
    name, else a regular expression (searched, as asv run --bench) matching exactly one."""
    if pattern in names:
        return pattern
    try:
        matches = sorted(n for n in names if re.search(pattern, n))
    except re.error as err:
        raise RecordedResultsError(f"--bench {pattern!r} is not a valid regular expression ({err})")
    if len(matches) == 1:
        return matches[0]
    some = ", ".join(sorted(names)[:3])
    raise RecordedResultsError(
        f"--bench {pattern!r} matches {len(matches)} {what}s ({', '.join(matches[:3]) or 'none'}); "
        f"name exactly one, e.g. {some}")
