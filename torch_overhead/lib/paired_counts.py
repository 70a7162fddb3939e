"""compare's verdict on a backward it cannot time: both sides' instruction counts, all threads.

With both sides at once on one CPU a backward's time holds the other side's (``compare``,
``SHARED_CPU_BACKWARD``); its instructions over all threads, the autograd device thread's
included, do not. Each side counts those variants in its own interpreter as ``run --slow``
does: asv's runner runs the count class's ``setup_cache`` (callgrind, every memory layout,
``benchmarks/instruction_count.py``), then its ``track_instructions_all_threads``, recorded under
the side's build beside its timings. The ratio B/A gets the gate's verdict for counts: slower or
faster beyond its margin (1.5%: two builds' counts carry their memory layouts' offset,
docs/instruction-counts.md), else same.

Both sides' ``setup_cache`` processes start before the first round and count while the rounds
run, at the same time: each side's counting keeps its warm caches and its lock (``caches_held``)
under a temporary folder of its own (``side_tmpdir``), where one shared folder made the sides
count one after the other. They are started here rather than through asv's
``Spawner.create_setup_cache``, which blocks until the count is done and reads ``os.environ``,
which compare's rounds swap meanwhile.
"""

import itertools
import json
import os
import re
import shutil
import signal
import tempfile
import threading

from asv.benchmarks import Benchmarks
from asv.runner import BENCHMARK_RUN_SCRIPT, Spawner, run_benchmark

from .benchmark_env import benchmark_env, count_name
from .expected import DEFAULT_MARGINS
from .suite import settings

MARGIN = DEFAULT_MARGINS["instruction_count"]


def side_tmpdir(label):
    """A side's ``TMPDIR`` while it counts, made if missing. Named by the side alone, so that both
    sides' paths have one length (a path's length moves a count: docs/instruction-counts.md,
    "What moves a count") and a later comparison finds the side's warm caches."""
    folder = os.path.join(tempfile.gettempdir(), f"torch-overhead-side-{label}")
    os.makedirs(folder, exist_ok=True)
    return folder


def seed_flags(benchmark, idx):
    """The seed variant ``(requires_grad, inference_mode, backward, dynamic)`` of one of a
    benchmark's parameter sets, or None when the benchmark has not the seed's parameters."""
    names = benchmark.get("param_names") or []
    if not all(flag in names for flag in settings.SEED_PARAM_NAMES):
        return None
    combo = list(itertools.product(*benchmark["params"]))[idx]
    return tuple(combo[names.index(flag)] == "True" for flag in settings.SEED_PARAM_NAMES)


def job_of(benchmark, idx):
    """``(layer, *variant)``: the counting job of a timed variant, or None (not a layer's)."""
    cls = ":".join(benchmark["name"].split(".")[:2])
    layers = [layer for layer, target in settings.LAYERS.items() if target == cls]
    flags = seed_flags(benchmark, idx)
    return None if not layers or flags is None else (layers[0], *flags)


def verdict(a, b, margin=MARGIN):
    """``(B/A, verdict)`` of two counts: slower or faster beyond ``margin``, else same."""
    ratio = b / a
    return ratio, "slower" if ratio > 1 + margin else "faster" if ratio < 1 - margin else "same"


def summary(got):
    """A table row's figures from both sides' outcomes (``compare.outcome``), or ``(None, reason)``."""
    for label in "AB":
        if "samples" not in got[label] or got[label].get("value") is None:
            why = got[label].get("error") or got[label].get("skipped") or "no count"
            return None, f"side {label}: {why}"
    a, b = got["A"]["value"], got["B"]["value"]
    ratio, said = verdict(a, b)
    return {"metric": "instructions", "a": a, "b": b, "ratio": ratio, "verdict": said}, ""


class Counting:
    """Both sides' counts of ``jobs`` (``{variant name: job}``), started at once in the
    background; ``finish`` waits for them, runs the figures through asv and records them."""

    def __init__(self, sides, conf, all_benchmarks, jobs, device, project_root):
        self.sides, self.conf = sides, conf
        wanted = {name: count_name(job[0], job[1:], all_threads=True) for name, job in jobs.items()}
        patterns = ["^" + re.escape(n) + "$" for n in sorted(set(wanted.values()))]
        counted = Benchmarks(conf, list(all_benchmarks.values()), regex=patterns)
        variants_of = {}
        for name, count in wanted.items():
            variants_of.setdefault(count, []).append(name)
        self.benchmarks = {}  # count benchmark -> (its dict, the parameter sets to run, [(variant, set)])
        for bench_name in counted:
            benchmark = counted[bench_name]
            combos = list(itertools.product(*benchmark["params"]))
            for idx in counted.benchmark_selection[bench_name]:
                for name in variants_of.get(f"{bench_name}({', '.join(combos[idx])})", []):
                    entry = self.benchmarks.setdefault(bench_name, (benchmark, set(), []))
                    entry[1].add(idx)
                    entry[2].append((name, idx))
        # The runner's environment for a benchmark process, made here, while nothing swaps os.environ;
        # asv's Spawner adds the asv environment's own variables (a side's settings) to it.
        self.base_env = {side.label: dict(benchmark_env(device, side.build.git_version, project_root, patterns),
                                          TMPDIR=side_tmpdir(side.label))
                         for side in sides}
        self.procs, self.outputs, self.readers, self.cache_dirs = {}, {}, [], {}

    def start(self):
        for side in self.sides:
            for bench_name, (benchmark, _, _) in self.benchmarks.items():
                key = side.label, bench_name
                self.cache_dirs[key] = tempfile.mkdtemp(prefix="torch-overhead-counts-")
                # As asv's Spawner.create_setup_cache, without waiting (its own process group).
                proc = side.env.run([BENCHMARK_RUN_SCRIPT, "setup_cache", os.path.abspath(self.conf.benchmark_dir),
                                     bench_name, json.dumps({"cpu_affinity": None})],
                                    return_popen=True, redirect_stderr=True,
                                    env=dict(self.base_env[side.label], **side.env.env_vars),
                                    cwd=self.cache_dirs[key])
                self.procs[key] = proc
                reader = threading.Thread(target=self._drain, args=(key, proc), daemon=True)
                reader.start()
                self.readers.append(reader)

    def busy(self):
        """Whether a side's counting process still runs."""
        return any(proc.poll() is None for proc in self.procs.values())

    def _drain(self, key, proc):
        self.outputs[key] = proc.communicate()[0].decode(errors="replace")

    def finish(self):
        """``{variant name: {"A": outcome, "B": outcome}}`` (``compare.outcome``, the count added as
        ``value``), each side's figures added to its asv results."""
        from ..commands.compare import environ, outcome  # not at import: compare imports this module

        for reader in self.readers:
            reader.join()
        got = {}
        for side in self.sides:
            for bench_name, (benchmark, idxs, names) in self.benchmarks.items():
                key = side.label, bench_name
                if self.procs[key].returncode != 0:
                    lines = [line for line in self.outputs.get(key, "").splitlines() if line.strip()]
                    reason = f"counting exited {self.procs[key].returncode}: {(lines or ['no output'])[-1].strip()}"
                    for name, _ in names:
                        got.setdefault(name, {})[side.label] = {"error": reason}
                    continue
                with environ(self.base_env[side.label]):
                    res = run_benchmark(benchmark, Spawner(side.env, self.conf.benchmark_dir), profile=False,
                                        selected_idx=idxs, cwd=self.cache_dirs[key])
                side.results.add_result(benchmark, res, selected_idx=idxs, record_samples=True)
                for name, idx in names:
                    one = outcome(res, idx)
                    if "samples" in one:
                        one["value"] = res.result[idx]
                    got.setdefault(name, {})[side.label] = one
        return got

    def stop(self):
        """End what still counts (Ctrl-C, an error) and remove the caches."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        for folder in self.cache_dirs.values():
            shutil.rmtree(folder, ignore_errors=True)

