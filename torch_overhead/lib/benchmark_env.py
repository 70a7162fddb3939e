"""The environment of the benchmark processes: what the runner sets for every one of them.

Shared by the commands that start benchmark processes (``run`` through ``asv run``,
``compare`` through asv's forkserver directly).
"""

import json
import os
import re
import shutil

import asv_runner

from .suite import settings


def asv_name(benchmark, params=None):
    """A benchmark's name as asv matches --bench patterns against it: ``name(param, ...)`` with
    each parameter's repr for one parameter set, the bare name without one."""
    return benchmark if params is None else f"{benchmark}({', '.join(map(repr, params))})"


# The C++-wrapper layer's benchmark names: bare, and with each of the seed's parameter sets.
CPP_WRAPPER_NAMES = [
    asv_name(f"layers.InductorCppWrapper.{method}", params)
    for method in ("time_add1", "time_add1_synchronized")
    for params in [None, *settings.VARIANTS]
]


def asv_runner_path(project_root):
    """A folder holding only asv_runner, for ASV_PYTHONPATH.

    The benchmarked interpreter needs asv_runner. Rather than installing into the user's
    own torch environment, point it at this one's asv_runner through a folder that
    shadows nothing else (the whole site-packages would also bring this venv's torch).
    """
    shim = os.path.join(project_root, ".asv", "runner-path")
    link = os.path.join(shim, "asv_runner")
    os.makedirs(shim, exist_ok=True)
    target = os.path.dirname(asv_runner.__file__)
    if not (os.path.islink(link) and os.path.realpath(link) == target):
        if os.path.islink(link) or os.path.isfile(link):
            os.remove(link)
        elif os.path.isdir(link):
            shutil.rmtree(link)
        os.symlink(target, link)
    return shim


def benchmark_pythonpath(project_root):
    """A benchmark process's PYTHONPATH: asv_runner's folder, then the caller's."""
    return os.pathsep.join(p for p in (asv_runner_path(project_root), os.environ.get("PYTHONPATH")) if p)


def runs_cpp_wrapper(patterns):
    """Whether ``asv run --bench`` with these patterns (none: every benchmark) runs any of the
    C++-wrapper layer: then the forkserver probes the CPU's vector instruction sets once, which
    every one of that layer's processes would otherwise do again (``benchmarks/forkserver.py``)."""
    return not patterns or any(re.search(p, name) for p in patterns for name in CPP_WRAPPER_NAMES)


def count_name(layer, variant, all_threads=False):
    """The asv name of one job's instruction count: the headline's (``InstructionCount``) or
    another layer's (``LayerInstructionCount``), on the calling thread or over all threads."""
    method = "track_instructions_all_threads" if all_threads else "track_instructions"
    if layer == settings.HEADLINE_LAYER:
        return asv_name(f"instruction_count.InstructionCount.{method}", list(variant))
    return asv_name(f"instruction_count.LayerInstructionCount.{method}", [layer, *variant])


def _selected_counts(patterns):
    """``[(job, calling thread selected, all threads selected)]`` for every counting job of which
    ``asv run --bench`` with these patterns runs a figure (asv matches ``name(param, ...)``)."""
    out = []
    for layer in settings.LAYERS:
        for variant in settings.VALID_VARIANTS:
            chosen = [any(re.search(p, count_name(layer, variant, every)) for p in patterns) for every in (False, True)]
            if any(chosen):
                out.append(([layer, *variant], *chosen))
    return out


def counted_jobs(patterns):
    """The counting jobs, ``[layer, *variant]``, of the instruction-count variants that ``asv run
    --bench`` with these patterns runs, or None for every one: ``setup_cache`` counts a whole
    class at once, and asv tells it nothing of the selection."""
    return None if not patterns else [job for job, _, _ in _selected_counts(patterns)]


def all_threads_only(patterns):
    """Whether these patterns select instruction counts, all of them over all threads."""
    selected = _selected_counts(patterns) if patterns else []
    return bool(selected) and not any(calling for _, calling, _ in selected)


def env_tags(device, pinning=""):
    """The asv environment's tagged variables (``asv_plugins/environment.py``): the device, and
    the pinning where it is not the default one CPU."""
    tags = {("nobuild", settings.DEVICE_ENV_VAR): device}
    if pinning:
        tags[("nobuild", settings.PINNING_ENV_VAR)] = pinning
    return tags


def benchmark_env(device, commit, project_root, patterns, pinning=""):
    env = dict(os.environ)
    env[settings.DEVICE_ENV_VAR] = device
    env.pop(settings.PINNING_ENV_VAR, None)
    if pinning:
        env[settings.PINNING_ENV_VAR] = pinning
    env[settings.COMMIT_ENV_VAR] = commit
    env[settings.CPP_WRAPPER_ENV_VAR] = "1" if runs_cpp_wrapper(patterns) else "0"
    jobs = counted_jobs(patterns)
    env.pop(settings.COUNT_JOBS_ENV_VAR, None)
    if jobs is not None:
        env[settings.COUNT_JOBS_ENV_VAR] = json.dumps(jobs)
    env.pop(settings.ALL_THREADS_ONLY_ENV_VAR, None)
    if all_threads_only(patterns):
        env[settings.ALL_THREADS_ONLY_ENV_VAR] = "1"
    # asv's `existing`-type environments pass PYTHONPATH through unchanged (the others
    # replace it with ASV_PYTHONPATH): set both.
    env["PYTHONPATH"] = env["ASV_PYTHONPATH"] = benchmark_pythonpath(project_root)
    env["PYTHONUNBUFFERED"] = "1"
    return env
