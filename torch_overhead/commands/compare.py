"""Paired comparison of two torch builds, or of one build under two environment settings.

``python -m torch_overhead compare --python-a OLD/bin/python --python-b NEW/bin/python``
(or ``--env-b TORCHINDUCTOR_SOME_FLAG=1``) answers "is B slower than A?" per benchmark
variant on a noisy machine, where a median compared with one recorded earlier is no answer
(docs/paired-comparison.md). It runs in rounds: in each round, for each variant still
undecided, one fresh benchmark process of each side, both at once (Duet benchmarking), or with
``--pairing back-to-back`` one after the other in a fresh random order (recorded). The ratio of
the two processes' estimates is one paired observation; over the rounds each variant gets an
interval of the ratio B/A (``lib/paired.py``) and a verdict: slower or faster (interval wholly
beyond ``1 +- --band``), same (wholly within it), or unknown, which more rounds settle, up to
``--budget-seconds``.

How it drives asv: each round starts, per side, one interpreter that imports torch, Dynamo and
Inductor once and forks an asv_runner server for each lane (``lib/forkservers.py``), and each
benchmark process is forked from its lane's server by asv's ``run_benchmark``. A main-command
run per side and round (as ``figures`` does) would pay the probe and asv's discovery every time
too, and start the two sides' servers one after the other (docs/paired-comparison.md has the figures). Each process's
samples are added to that side's asv results under its build, machine ``MACHINE-compare``
(never over what ``run`` recorded), so ``asv compare`` and the dashboard see them; a side with
environment settings is its own asv environment (the settings are part of its name), and when
both sides are the same build with the same settings (an A/A check) side B is recorded
under ``MACHINE-compare-b``, so neither overwrites the other.

After every round the rounds so far are written atomically to a state file under
``.asv/``: Ctrl-C keeps them, and the same command resumes.
"""

import concurrent.futures
import contextlib
import datetime
import hashlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass

from asv.benchmarks import Benchmarks
from asv.config import Config
from asv.machine import Machine
from asv.repo import get_repo
from asv.results import Results
from asv.runner import run_benchmark
from asv.util import UserError

from ..asv_plugins.environment import InstalledTorch
from ..lib import builds, dashboard, guard, machine, main_command, paired, paired_counts, recorded
from ..lib.benchmark_env import benchmark_env
from ..lib.forkservers import SideServers
from ..lib.probe import ProbeError, probe
from ..lib.suite import settings

CONFIG = "asv.conf.json"
# A wave of the headline's ten variants in five lanes runs two pairs a lane, about as long as the
# next wave's servers take to import meanwhile (docs/paired-comparison.md, "Lanes").
PAIRS_PER_LANE = 2
# Both sides at once on one CPU take turns in scheduler slices of a few ms: a sample of the
# suite's usual five timings mostly spans the other side's slice too, which dilutes a difference
# between the sides. Samples of one timing mostly fall within one side's slice, and more of them
# keep the median steady (docs/paired-comparison.md).
SIMULTANEOUS_SAMPLING = {"number": 1, "repeat": (40, 200, 10.0)}
DEFAULT_BENCH = "^" + settings.HEADLINE.replace(".", r"\.") + r"\("
# A backward blocks at every call until the autograd engine's device thread is done, so two sides
# on one CPU take turns call by call and each one's time holds the other's: a 5% cost added on
# the device thread read 0.974-0.985, once "same" (docs/paired-comparison.md). Not timed so, but
# counted (lib/paired_counts.py); this is the note when the counts fail too.
SHARED_CPU_BACKWARD = "n/a: a backward with both sides on one CPU, where each side's time holds the other's"
UNCOUNTED = "; give each lane two CPUs (--cpu-affinity), or install valgrind for its instruction counts"


class CompareError(RuntimeError):
    """Bad input, found before anything is run or recorded."""


@dataclass
class Side:
    label: str  # "A" or "B"
    python: str
    settings: dict  # environment variables set for this side's benchmark processes only
    build: object = None  # lib.probe.TorchBuild
    machine: str = None
    env: object = None  # the side's asv environment (InstalledTorch)
    process_env: dict = None
    results: object = None  # asv Results, appended to round after round
    describe: str = ""  # one line: build, interpreter, settings, where recorded


@dataclass
class Lane:
    """One of the ``--jobs`` lanes a round's variants are dealt to: its own CPUs, and in each round
    its own forkserver per side and meeting directory (``RoundServers``), so pairs in different
    lanes run side by side and never share a CPU."""
    cpus: list  # the CPUs of this lane's processes, or None (not pinned)


def lanes_of(cpus, jobs, pairing):
    """``--cpu-affinity`` dealt to ``--jobs`` lanes, consecutive CPUs to each; raises CompareError."""
    if jobs < 1:
        raise CompareError(f"--jobs {jobs}: give a positive number of lanes")
    if cpus is None:
        return [Lane(None) for _ in range(jobs)]
    if len(cpus) % jobs:
        raise CompareError(f"--jobs {jobs} with {len(cpus)} CPUs in --cpu-affinity: give {jobs} CPUs (one per lane) "
                           f"or a multiple, e.g. --cpu-affinity {max(0, os.cpu_count() - jobs)}-{os.cpu_count() - 1}")
    size = len(cpus) // jobs
    if pairing == "simultaneous" and size > 2:
        raise CompareError(f"--cpu-affinity {','.join(map(str, cpus))}: with --pairing simultaneous give one CPU "
                           "per lane (both sides share it), two (one each, at random) or none")
    return [Lane(cpus[k * size:(k + 1) * size]) for k in range(jobs)]


def parse_settings(items, label):
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or any(c in key for c in " ="):
            raise CompareError(f"--env-{label.lower()} {item!r}: give KEY=VALUE, e.g. TORCHINDUCTOR_CPP_WRAPPER=1")
        out[key] = value
    return out


@contextlib.contextmanager
def environ(env):
    """``os.environ`` replaced by ``env`` for the duration: asv's ForkServer and InstalledTorch
    read the benchmark processes' environment from it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def uninterrupted():
    """Ctrl-C waits for the block to end: asv writes a results file in place, and a write cut
    short would lose what it held. Within another such block it waits for that one's end. A
    handler, not a blocked signal mask as lib/dashboard.py's swap: a mask holds only the calling
    thread, and the next round's imports run in pool threads while a wave is saved."""
    if getattr(signal.getsignal(signal.SIGINT), "holds_ctrl_c", False):
        yield
        return
    caught = []

    def hold(*_):
        caught.append(True)
    hold.holds_ctrl_c = True
    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def prepare_sides(args, conf, patterns):
    """Probe both interpreters, pick the device and the machine names, check what is recorded
    and register both builds; raises ProbeError, CompareError, RecordedResultsError or
    BuildIndexError with nothing written but the build index."""
    sides = [Side("A", args.python_a or args.python, parse_settings(args.env_a, "A")),
             Side("B", args.python_b or args.python, parse_settings(args.env_b, "B"))]
    pythons = sorted({side.python for side in sides})
    with concurrent.futures.ThreadPoolExecutor(len(pythons)) as pool:  # each probe imports torch: seconds
        found = dict(zip(pythons, pool.map(probe, pythons)))
    for side in sides:
        side.build = found[side.python]
    devices = {side.build.resolve_device(args.device) for side in sides}
    if len(devices) > 1:
        raise CompareError("one side sees a GPU and the other does not; pass --device cpu or two CUDA builds")
    device = devices.pop()
    if args.machine:
        machine.check_name(args.machine)
    name = (args.machine or sides[0].build.default_machine_name(device, socket.gethostname())) + "-compare"
    for side in sides:
        side.process_env = benchmark_env(device, side.build.git_version, args.project_root, patterns)
        with environ(side.process_env):
            side.env = InstalledTorch(conf, side.python, {}, {("nobuild", k): v for k, v in side.settings.items()})
    a, b = ((s.build.git_version, s.env.name) for s in sides)
    for side in sides:
        side.machine = name + ("-b" if a == b and side.label == "B" else "")  # else B would overwrite A
        recorded.check(conf.results_dir, side.machine, side.build.git_version, side.env.name, conf.benchmark_dir)
        settings_text = " ".join(f"{k}={v}" for k, v in side.settings.items()) or "no settings"
        side.describe = (f"torch {side.build.version} @ {side.build.git_version[:12]} in {side.python}, "
                         f"{settings_text}; recorded as {side.machine} / {side.env.name}")
    for side in sides:
        note = machine.register(conf.results_dir, side.machine)
        if note:
            print(f"note: {note}")
    for side in sides:
        builds.register(os.path.join(args.project_root, conf.repo), side.build.git_version, side.build.version)
    return sides, device


def open_results(side, conf, repo):
    """The side's asv results file (what is recorded for its build and environment, if any)."""
    facts = Machine.load(machine_name=side.machine)
    facts.save(conf.results_dir)
    params = {**facts.__dict__, "python": side.env.python}
    commit = side.build.git_version
    results = Results(params, {}, commit, repo.get_date(commit), side.env.python, side.env.name, side.env.env_vars)
    results.load_data(conf.results_dir)
    return results


def variants(benchmarks):
    """``[(variant name, benchmark, parameter index)]`` of every selected variant."""
    out = []
    for name in sorted(benchmarks):
        benchmark = benchmarks[name]
        selection = benchmarks.benchmark_selection[name]
        if selection is None:
            out.append((name, benchmark, 0))
            continue
        combos = list(itertools.product(*benchmark["params"]))
        out += [(f"{name}({', '.join(combos[i])})", benchmark, i) for i in selection]
    return out


def shared_cpu_backwards(selected, lanes, pairing):
    """Names of the seed's backward variants in ``selected`` that both sides at once on one CPU a
    lane would time (``SHARED_CPU_BACKWARD``); a combination the seed leaves out keeps asv's skip."""
    if pairing != "simultaneous" or any(lane.cpus is None or len(lane.cpus) != 1 for lane in lanes):
        return set()
    out = set()
    for name, benchmark, idx in selected:
        flags = paired_counts.seed_flags(benchmark, idx)
        if flags in settings.VALID_VARIANTS and flags[settings.SEED_PARAM_NAMES.index("backward")]:
            out.add(name)
    return out


def state_path(project_root, sides, device, patterns, attributes, pairing, jobs, hash_seed):
    identity = {"device": device, "bench": patterns, "attributes": attributes, "pairing": pairing,
                "hash_seed": hash_seed,
                "sides": [[s.python, s.build.git_version, s.settings, s.machine] for s in sides],
                **({"jobs": jobs} if jobs > 1 else {})}
    key = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return os.path.join(project_root, ".asv", f"compare-{key}.json"), identity


def load_state(path, identity):
    if not os.path.exists(path):
        return {"identity": identity, "rounds": []}
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise CompareError(f"state file {path} is unreadable ({err}); move it aside to start over")


def outcome(res, idx):
    """One process's result: ``{"samples": [...]}``, or ``{"skipped": reason}`` / ``{"error": reason}``."""
    value = res.result[idx]
    last = ([line for line in (res.stderr or "").splitlines() if line.strip()] or [None])[-1]
    if res.errcode != 0 or value is None:
        return {"error": last or f"exit status {res.errcode}"}
    if value != value:  # NaN: asv's "skipped" (NotImplementedError in setup)
        return {"skipped": last or "skipped"}
    return {"samples": res.samples[idx]}


def status_of(name, rounds, band, estimator):
    """``(summary or None, note)`` for one variant from the state's rounds."""
    pairs, imports = [], []
    for entry in rounds:
        got = entry["variants"].get(name)
        if got is None:
            continue
        for label in "AB":
            if "error" in got[label]:
                return None, f"side {label} failed in round {entry['round']}: {got[label]['error']}"
            if "skipped" in got[label]:
                return None, f"n/a: {got[label]['skipped']}"
        pairs.append((got["A"]["samples"], got["B"]["samples"]))
        imports.append(paired.import_of(entry))
    return paired.summarize(pairs, band, estimator, imports=imports), ""


def undecided(names, rounds, band, estimator):
    out = []
    for name in names:
        summary, note = status_of(name, rounds, band, estimator)
        if not note and summary["verdict"] == "unknown":
            out.append(name)
    return out


def with_pairing_sampling(pairing, attributes):
    """asv attributes of every benchmark process: with both sides at once, SIMULTANEOUS_SAMPLING
    under the user's own ``--attribute`` items."""
    return {**SIMULTANEOUS_SAMPLING, **attributes} if pairing == "simultaneous" else attributes


def pairs_of_each(undecided_count, lane_count):
    """How many pairs of each undecided variant the next wave runs: up to PAIRS_PER_LANE pairs in
    each lane, as a wave of all variants has, so that the last undecided variants get rounds as
    fast as the first did; and no two pairs of one variant in one lane, whose servers they would
    share (run_wave deals task i to lane i % lanes, so variant j's pairs land on r * count + j)."""
    by_load = PAIRS_PER_LANE * lane_count // undecided_count
    return max(1, min(by_load, lane_count // math.gcd(undecided_count, lane_count)))


def run_wave(first, todo, reps, sides, lanes, servers, extra_params, rng, append):
    """Rounds ``first`` to ``first + reps - 1`` at once: ``reps`` pairs of each variant of ``todo``,
    dealt to the lanes, which run side by side (more lanes than undecided variants: several pairs
    of each). In each lane, for each pair it was dealt, a process of each side back to back in a
    random order, or both at once meeting in the lane's directory (simultaneous pairing), each
    forked from the lane's server of the round's import (``servers.spawners``; rounds beyond the
    wave's imports share them, in turn). Returns the rounds' entries, each holding one pair per
    variant and its ``import``."""
    started = datetime.datetime.now(datetime.timezone.utc).isoformat()
    imports = len(servers.spawners)
    entries = [{"round": first + r, "started": started, "import": r % imports, "variants": {}} for r in range(reps)]
    tasks = [(r, item) for r in range(reps) for item in todo]
    draws = [random.Random(rng.random()) for _ in lanes]  # one generator per thread, all from the seedable one

    def lane_work(k):
        lane, barrier, out = lanes[k], servers.barriers[k], []
        for r, (name, benchmark, idx) in tasks[k::len(lanes)]:
            spawners = servers.spawners[r % imports][k]
            params = extra_params if lane.cpus is None else dict(extra_params, cpu_affinity=lane.cpus)
            got, ran = (run_back_to_back(benchmark, idx, sides, spawners, params, draws[k]) if barrier is None
                        else run_at_once(benchmark, idx, servers.order, spawners, barrier, params, draws[k]))
            out.append((r, name, dict(got, lane=k), ran))
        return out

    pool = concurrent.futures.ThreadPoolExecutor(len(lanes))
    try:
        done = {(r, name): (got, ran) for out in pool.map(lane_work, range(len(lanes))) for r, name, got, ran in out}
    finally:
        pool.shutdown(wait=False)  # on Ctrl-C: closing the servers ends the threads' waits
    for r, (name, benchmark, idx) in tasks:  # recorded in one thread, in the rounds' and variants' order
        got, ran = done[r, name]
        for side in sides:
            got[side.label] = outcome(ran[side.label], idx)
            side.results.add_result(benchmark, ran[side.label], selected_idx={idx}, record_samples=True,
                                    append_samples=(append or r > 0) and "samples" in got[side.label])
        entries[r]["variants"][name] = got
    return entries


def run_back_to_back(benchmark, idx, sides, spawners, extra_params, rng):
    """``(what the state records of the pair, {label: asv result})``: one side's process after the
    other's, in a random order."""
    order = rng.sample(sides, 2)
    ran = {side.label: run_benchmark(benchmark, spawners[side.label], profile=False, selected_idx={idx},
                                     extra_params=extra_params) for side in order}
    return {"order": "".join(s.label for s in order)}, ran


def run_at_once(benchmark, idx, sides, spawners, barrier, extra_params, rng):
    """As ``run_back_to_back``, both processes started together, one thread each (Duet
    benchmarking): a slow spell of the host lands on both. Given two CPUs, each side gets one, at
    random; given one, they share it. ``sides`` in the order their processes are submitted (the
    round's ``RoundServers.order``). They start sampling together (``common.pair_barrier``).
    The state records each side's CPU and each process's start and end (Unix time)."""
    cpus = extra_params.get("cpu_affinity")
    drawn = rng.sample(cpus, 2) if len(cpus or []) == 2 else (cpus or [None]) * 2
    placed = {side.label: cpu for side, cpu in sorted(zip(sides, drawn), key=lambda pair: pair[0].label)}
    wall_clock = {}

    def one(side):
        cpu = placed[side.label]
        params = extra_params if cpu is None else dict(extra_params, cpu_affinity=[cpu])
        began = time.time()
        res = run_benchmark(benchmark, spawners[side.label], profile=False, selected_idx={idx},
                            extra_params=params)
        wall_clock[side.label] = [began, time.time()]
        # Releases the other side's process if this one ended (failed, skipped) before the barrier.
        open(os.path.join(barrier, f"side-{side.label}-ended"), "w").close()
        return res

    pool = concurrent.futures.ThreadPoolExecutor(len(sides))
    try:
        ran = {side.label: res for side, res in zip(sides, pool.map(one, sides))}
    finally:
        pool.shutdown(wait=False)  # on Ctrl-C: closing the servers ends the threads' waits
    for entry in os.listdir(barrier):  # the next pair meets in an empty directory
        os.remove(os.path.join(barrier, entry))
    return {"cpus": placed, "wall_clock": wall_clock}, ran


def placement(got):
    """How a pair ran, for the progress line and the report: the order (back to back), or each
    side's CPU (at once; "any" when not pinned)."""
    if "order" in got:
        return got["order"]
    return ",".join(f"{label}@{'any' if cpu is None else cpu}" for label, cpu in got["cpus"].items())


def fmt_us(seconds):
    return f"{seconds * 1e6:8.2f}" if seconds is not None else "       -"


def fmt_interval(summary):
    if summary["low"] is None:
        return "(too few imports)"
    return f"[{summary['low']:.3f}, {summary['high']:.3f}]"


def table(names, rounds, band, estimator, untimed=(), counts=None):
    """Rows of the verdict table: ``[(variant, summary or None, note)]``; ``untimed``: variants
    not timed (``SHARED_CPU_BACKWARD``), decided by ``counts`` (``paired_counts``) where they hold them."""
    rows = []
    for name in names:
        if name not in untimed:
            rows.append((name,) + status_of(name, rounds, band, estimator))
        elif name in (counts or {}):
            s, why = paired_counts.summary(counts[name])
            rows.append((name, s, "" if s else f"{SHARED_CPU_BACKWARD}; not counted ({why}){UNCOUNTED}"))
        else:
            rows.append((name, None, SHARED_CPU_BACKWARD + UNCOUNTED))
    return rows


def counted_cells(s):
    """The rounds, A, B and interval cells of a row decided by instruction counts."""
    return "counted", f"{s['a']:,.0f}", f"{s['b']:,.0f}", f"instructions, all threads; margin {paired_counts.MARGIN:g}"


def print_table(rows):
    print(f"{'variant':<64} {'rounds':>6} {'A us':>8} {'B us':>8} {'B/A':>6}  {'interval':<16}  verdict")
    for name, s, note in rows:
        if s is None:
            print(f"{name:<64} {'':>6} {'':>8} {'':>8} {'':>6}  {'':<16}  unknown ({note})" if "failed" in note
                  else f"{name:<64} {'':>6} {'':>8} {'':>8} {'':>6}  {'':<16}  {note}")
            continue
        ratio = f"{s['ratio']:.3f}" if s["ratio"] is not None else "-"
        if s.get("metric"):
            rounds, a, b, how = counted_cells(s)
            print(f"{name:<64} {rounds:>6} {a:>8} {b:>8} {ratio:>6}  {s['verdict']} ({how})", flush=True)
            continue
        print(f"{name:<64} {s['rounds']:>6} {fmt_us(s['a'])} {fmt_us(s['b'])} {ratio:>6}  {fmt_interval(s):<16}  "
              f"{s['verdict']}", flush=True)


def spread_line(state, band):
    """How far apart the rounds landed, per estimator, and what that costs in rounds for the band."""
    found = paired.spreads(paired.pairs_of_state(state))
    if not found:
        return ""
    median = found["median"][0]
    shared = paired.shared_by_round(state)
    return ("spread of the rounds, sd of log(B/A), median over variants: "
            + ", ".join(f"{name} {sd:.3f}" for name, (sd, _) in found.items())
            + f"; an interval within 1 +- {band} needs about {paired.rounds_needed(median, band)} rounds at the "
            "median's spread"
            + ("" if shared is None else f"; shared by a round's variants: sd of its mean log(B/A) {shared[0]:.3f}, "
               f"{shared[1]:.3f} were they independent"))


def write_report(path, rows, sides, args, state, device):
    rounds = state["rounds"]
    lines = [
        "# Paired comparison", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()}",
        f"- device: {device}; machine: {sides[0].machine}",
    ]
    lines += [f"- side {s.label}: {s.describe}" for s in sides]
    lines += [
        f"- rounds: {len(rounds)} ({sum(r['seconds'] for r in rounds):.0f} s of benchmark processes); "
        f"per process: the {args.estimator} of its samples; ratio B/A: Hodges-Lehmann estimate, "
        f"{paired.CONFIDENCE:.0%} signed-rank interval over imports (a variant's rounds forked from one import "
        f"of each side count once, their mean log(B/A)); band: 1 +- {args.band}; pairing: {args.pairing}; "
        f"hash seed: {args.hash_seed}",
        "", "| variant | rounds | A (us) | B (us) | B/A | interval | verdict |", "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s, note in rows:
        if s is None:
            lines.append(f"| `{name}` | | | | | | {'unknown: ' + note if 'failed' in note else note} |")
            continue
        ratio = f"{s['ratio']:.3f}" if s["ratio"] is not None else ""
        cells = counted_cells(s) if s.get("metric") else (s["rounds"], fmt_us(s["a"]).strip(), fmt_us(s["b"]).strip(),
                                                           fmt_interval(s))
        lines.append(f"| `{name}` | {cells[0]} | {cells[1]} | {cells[2]} | {ratio} | {cells[3]} | {s['verdict']} |")
    noise = spread_line(state, args.band)
    lines += ["", noise] if noise else []
    lines += ["", "Order of the two sides per round and variant (A first or B first):" if args.pairing == "back-to-back"
              else "CPU of each side per round and variant (both sides at once):", ""]
    for entry in rounds:
        lines.append(f"- round {entry['round']}: " + ", ".join(placement(v) for v in entry["variants"].values())
                     + (f"; side {entry['first']} started first" if "first" in entry else ""))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def command(project_root, python_a, python_b, machine, device, cpu_affinity, budget_seconds, report, patterns=(),
            attributes=(), *extra):
    """The command line of this command, for the tools that run it in a subprocess (``gate
    --baseline-python``, ``bisect --good-python``) and read its report (``paired.read_report``)."""
    cmd = [sys.executable, "-m", "torch_overhead", "compare", "--project-root", project_root,
           "--python-a", python_a, "--python-b", python_b, "--machine", machine, "--device", device,
           "--cpu-affinity", cpu_affinity, "--budget-seconds", f"{budget_seconds:g}", "--report", report, *extra]
    cmd += [a for pattern in patterns for a in ("--bench", pattern)]
    return cmd + [a for item in attributes or () for a in ("--attribute", item)]


def main(args):
    try:
        lock = guard.lock(args.project_root)  # one command recording in a checkout at a time
    except guard.LockedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return compare(args)
    finally:
        lock.close()


def compare(args):
    project_root = args.project_root
    patterns = args.bench or [DEFAULT_BENCH]
    try:
        if args.band <= 0 or args.band >= 1:
            raise CompareError(f"--band {args.band}: give a fraction between 0 and 1 (0.02 is +-2%)")
        if args.budget_seconds <= 0:
            raise CompareError(f"--budget-seconds {args.budget_seconds}: give a positive number of seconds")
        try:
            extra_params = main_command.asv_attributes(args.attribute, args.cpu_affinity)
        except ValueError as err:
            raise CompareError(f"{err}; e.g. --attribute repeat=10")
        extra_params = with_pairing_sampling(args.pairing, extra_params)
        lanes = lanes_of(extra_params.get("cpu_affinity"), args.jobs, args.pairing)
        conf = Config.load(os.path.join(project_root, CONFIG))
        conf.results_dir = os.path.join(project_root, conf.results_dir)
        conf.benchmark_dir = os.path.join(project_root, conf.benchmark_dir)
        sides, device = prepare_sides(args, conf, patterns)
    except (ProbeError, CompareError, recorded.RecordedResultsError, builds.BuildIndexError,
            machine.MachineError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for side in sides:
        print(f"side {side.label}: {side.describe}", flush=True)
    path, identity = state_path(project_root, sides, device, patterns, extra_params, args.pairing, args.jobs,
                                args.hash_seed)
    try:
        state = load_state(path, identity)
    except CompareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if state["rounds"]:
        print(f"resuming from {path}: {len(state['rounds'])} rounds recorded", flush=True)
    conf.repo = os.path.join(project_root, conf.repo)
    repo = get_repo(conf)
    start = time.perf_counter()
    try:
        with environ(sides[0].process_env):
            benchmarks = Benchmarks.discover(conf, repo, [sides[0].env], [sides[0].build.git_version], regex=patterns)
    except UserError as err:
        print(f"error: the benchmark suite did not import in {sides[0].python} ({err})", file=sys.stderr)
        return 2
    benchmarks.save()  # results/benchmarks.json, as `asv run` writes it: publish and compare read it
    selected = variants(benchmarks)
    if not selected:
        print(f"error: --bench {' '.join(patterns)} matches no benchmark; names look like "
              f"{settings.HEADLINE}(False, False, False, False)", file=sys.stderr)
        return 2
    names = [name for name, _, _ in selected]
    untimed = shared_cpu_backwards(selected, lanes, args.pairing)
    state.setdefault("counts", {})
    jobs = {name: paired_counts.job_of(benchmark, idx) for name, benchmark, idx in selected
            if name in untimed and name not in state["counts"]}
    to_count = {name: job for name, job in jobs.items() if job}
    counting = (paired_counts.Counting(sides, conf, benchmarks._all_benchmarks, to_count, device, project_root)
                if to_count else None)
    if counting and not counting.benchmarks:  # the suite has none of their counts
        counting = None
    if untimed and len(untimed) == len(selected) and not counting and not state["counts"]:
        print(f"error: {SHARED_CPU_BACKWARD[len('n/a: '):]}, and the suite has no instruction count of "
              f"{', '.join(sorted(untimed))}{UNCOUNTED}", file=sys.stderr)
        return 2
    print(f"{len(names)} variants; state {path}; budget {args.budget_seconds:.0f} s"
          + (f"; {len(untimed)} backward decided by instruction counts over all threads, not timed on a shared CPU"
             + (", counting beside the rounds" if counting else "") if untimed else ""), flush=True)
    try:
        if counting:
            counting.start()
        status = loop(args, sides, lanes, conf, repo, [item for item in selected if item[0] not in untimed], state,
                      path, extra_params, start, counting)
        if counting and status is None:
            status = record_counts(counting, sides, conf, repo, state, path)
    finally:
        if counting:
            counting.stop()
    rows = table(names, state["rounds"], args.band, args.estimator, untimed, state["counts"])
    print()
    print_table(rows)
    noise = spread_line(state, args.band)
    if noise:
        print(noise)
    if args.report:
        write_report(args.report, rows, sides, args, state, device)
        print(f"report: {args.report}")
    if status is not None:
        return status
    if dashboard.publish(project_root, CONFIG, sides[0].process_env) != 0:
        print("error: `asv publish` failed (see above); the results are recorded", file=sys.stderr)
    slower = [name for name, s, _ in rows if s is not None and s["verdict"] == "slower"]
    return 1 if slower else 0


def record_counts(counting, sides, conf, repo, state, path):
    """Wait for the instruction counts (``paired_counts``), record them through asv and in the
    state; returns None, or 130 when interrupted (nothing of the counts kept)."""
    print("waiting for the instruction counts ...", flush=True)
    try:
        for side in sides:
            if side.results is None:  # no round ran: every timed variant was decided before
                side.results = open_results(side, conf, repo)
        got = counting.finish()
    except KeyboardInterrupt:
        print("error: interrupted while counting; the rounds are kept, the counts are not: run the same "
              "command again to count them", file=sys.stderr)
        return 130
    with uninterrupted():
        for side in sides:
            side.results.save(conf.results_dir)
        state["counts"].update(got)
        builds.write_json(path, state)
    return None


def why_stop(done, elapsed, wave_seconds, any_undecided, max_rounds, budget_seconds, still_counting):
    """Why no further round runs, or None. Past the budget, rounds go on while the instruction
    counts still run: the comparison waits for them anyway, and its undecided timed variants get
    those rounds for nothing."""
    if not any_undecided:
        return "every variant decided"
    if max_rounds and done >= max_rounds:
        return f"--max-rounds {max_rounds} reached"
    if done and elapsed + wave_seconds > budget_seconds and not still_counting:
        return f"budget of {budget_seconds:.0f} s spent ({elapsed:.0f} s)"
    return None


def loop(args, sides, lanes, conf, repo, selected, state, path, extra_params, start, counting=None):
    """Rounds until every variant is decided, --max-rounds is reached, or the budget is spent and
    ``counting`` (``paired_counts.Counting``) done. Returns None, or 130 when interrupted (every
    finished round kept)."""
    rng = random.Random()
    names = [name for name, _, _ in selected]
    spent_before = sum(r["seconds"] for r in state["rounds"])
    # The next wave's estimate: the last wave's time (its rounds share their start and split its time).
    wave_seconds = sum(r["seconds"] for r in state["rounds"]
                       if paired.wave_of(r) == paired.wave_of(state["rounds"][-1]))

    def stop(while_counting=True):
        return why_stop(len(state["rounds"]), spent_before + time.perf_counter() - start, wave_seconds,
                        bool(undecided(names, state["rounds"], args.band, args.estimator)), args.max_rounds,
                        args.budget_seconds, while_counting and counting is not None and counting.busy())

    if stop():  # a finished comparison run again: report it, start nothing
        print(stop())
        return None
    used = {cpu for lane in lanes for cpu in lane.cpus or []}
    spare = sorted(set(os.sched_getaffinity(0)) - used) if used else []
    servers = upcoming = None
    told = False
    try:
        for side in sides:
            side.results = open_results(side, conf, repo)
        # A wave's imports: one per round it runs of each variant, as many as the last wave ran
        # (the variants still undecided only get fewer).
        imports = pairs_of_each(len(undecided(names, state["rounds"], args.band, args.estimator)) or 1, len(lanes))
        upcoming = RoundServers(sides, lanes, conf, args.pairing == "simultaneous", spare, args.hash_seed, rng, imports)
        while not stop():
            if not told and stop(while_counting=False):
                print(f"budget of {args.budget_seconds:.0f} s spent; more rounds while the instruction counts run",
                      flush=True)
                told = True
            todo_names = undecided(names, state["rounds"], args.band, args.estimator)
            todo = [item for item in selected if item[0] in todo_names]
            done = len(state["rounds"])
            reps = pairs_of_each(len(todo), len(lanes))
            if args.max_rounds:
                reps = min(reps, args.max_rounds - done)
            began = time.perf_counter()
            servers, upcoming = upcoming, None
            failed = servers.ready()
            if failed:
                print(f"error: {failed}", file=sys.stderr)
                return 2
            if not (args.max_rounds and done + reps >= args.max_rounds):
                upcoming = RoundServers(sides, lanes, conf, args.pairing == "simultaneous", spare, args.hash_seed,
                                        rng, reps)
            entries = run_wave(done + 1, todo, reps, sides, lanes, servers, extra_params, rng, done > 0)
            # Ctrl-C held back from the wave's end until it is saved: one while its servers
            # close would drop rounds already run.
            with uninterrupted():
                servers.close()
                wave_seconds = time.perf_counter() - began
                for entry in entries:
                    entry["seconds"] = wave_seconds / len(entries)
                    entry["first"] = servers.order[0].label
                    if servers.hash_seeds[entry["import"]]:
                        entry["hash_seed"] = servers.hash_seeds[entry["import"]]
                for side in sides:
                    side.results.save(conf.results_dir)
                state["rounds"] += entries
                builds.write_json(path, state)
            for entry in entries:
                print(f"round {entry['round']}: {len(todo)} variants"
                      + (f" in {wave_seconds:.1f} s" if len(entries) == 1 else f", {len(entries)} rounds at once in "
                         f"{wave_seconds:.1f} s") + "; "
                      + ("orders " if args.pairing == "back-to-back" else "at once, CPUs ")
                      + " ".join(placement(v) for v in entry["variants"].values()), flush=True)
            print_table(table(todo_names, state["rounds"], args.band, args.estimator))
        print(stop(), flush=True)
        return None
    except (KeyboardInterrupt, UserError) as err:
        if isinstance(err, UserError) and "Interrupted" not in str(err):
            raise
        print(f"error: interrupted; the {len(state['rounds'])} finished rounds are kept in {path}: "
              "run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        for left in (servers, upcoming):
            if left is not None:
                # A Ctrl-C while closing comes after every server is closed and the rounds are kept.
                with contextlib.suppress(KeyboardInterrupt):
                    left.close()


class RoundServers:
    """One wave's fresh servers, ``imports`` per side, each an interpreter that imports torch, Dynamo
    and Inductor and forks a server per lane (``lib/forkservers.py``), in the background from the
    moment they are created: the next wave's start while this wave's pairs run, on the CPUs no
    lane uses when there are such CPUs. Fresh every wave: with one forkserver per side for all
    rounds, every process of a side shared that server's state, and an A/A comparison read one side
    faster in every round. What an import sets up, its forks share: a wave's rounds forked from
    one import moved together, of one variant or of two, so each round of a wave gets an import of
    its own (docs/paired-comparison.md, "Rounds of one import").
    With simultaneous pairing each lane gets a meeting directory, passed on through its servers'
    environment to the processes forked from them. With ``hash_seed`` "common", both sides'
    interpreters of an import get one PYTHONHASHSEED, drawn for it (inherited by every process
    forked from them; a side's own --env setting of it wins): the hash seed alone moves a compiled
    add1's instructions per call, a shift that would otherwise land on one side of the pair. Which
    side's interpreters start first, and whose process each pair submits first, is drawn afresh for
    each wave (``order``, recorded in the state as ``first``): a side that always went first would
    carry whatever that start gives it through the whole comparison (docs/paired-comparison.md,
    "A comparison's own lean")."""

    def __init__(self, sides, lanes, conf, simultaneous, spare_cpus, hash_seed, rng, imports=1):
        draw = random.SystemRandom()
        self.hash_seeds = [str(draw.randrange(1, 2 ** 32)) if hash_seed == "common" else None for _ in range(imports)]
        self.order = rng.sample(sides, len(sides))  # see the class's docstring: which side goes first
        self.barriers = [tempfile.mkdtemp(prefix="torch-overhead-pair-") if simultaneous else None for _ in lanes]
        lane_envs = [{} if b is None else {settings.PAIR_BARRIER_ENV_VAR: b} for b in self.barriers]
        self.sides, self.spawners = [], []
        for seed in self.hash_seeds:
            seeded = {"PYTHONHASHSEED": seed} if seed else {}
            started = []
            for side in self.order:
                # Ctrl-C held back: a server started but not yet kept would never be closed, and its
                # output reader thread would keep this process from exiting.
                with uninterrupted(), environ(dict(side.process_env, **seeded)):
                    started.append((side, SideServers(side.env, conf.benchmark_dir, lane_envs)))
                    self.sides.append(started[-1])
                if spare_cpus:
                    with contextlib.suppress(OSError):  # inherited by its lanes' servers and their imports
                        os.sched_setaffinity(started[-1][1].server_proc.pid, spare_cpus)
            self.spawners.append([{side.label: servers.lanes[k] for side, servers in started} for k in range(len(lanes))])
        self.pool = concurrent.futures.ThreadPoolExecutor(len(self.sides) * len(lanes))
        self.imported = [(side, self.pool.submit(lane.preimport)) for side, servers in self.sides
                         for lane in servers.lanes]

    def ready(self):
        """Wait for every server's import; returns an error, or None."""
        for side, future in self.imported:
            ok, out = future.result()
            if not ok:
                return (f"the benchmark suite does not import in side {side.label}'s {side.python}: "
                        f"{(out.strip().splitlines() or ['no output'])[-1]}")
        return None

    def close(self):
        # Ctrl-C held back until every server is closed: one cut off halfway would be closed again
        # by the caller's cleanup (its folder gone: a traceback) or left running.
        with uninterrupted():
            while self.sides:
                _, servers = self.sides.pop()
                servers.interrupted = True  # asv would print the server's output: not needed
                servers.close()
            self.pool.shutdown(wait=False)  # closing the servers ends the imports' waits
            for barrier in self.barriers:
                if barrier:
                    shutil.rmtree(barrier, ignore_errors=True)
