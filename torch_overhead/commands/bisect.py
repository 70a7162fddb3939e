"""Bisect: find the first PyTorch commit that made a benchmark slower, in about log2(N) builds.

``python -m torch_overhead bisect GOOD BAD [--checkout PATH] [--bench 'NAME(PARAMS)']
[--metric time|instructions] [--threshold RATIO] [--build-command CMD]``

Each step checks a commit out in the checkout, builds it there (``--build-command``,
default an incremental in-place build, ``DEFAULT_BUILD``), checks that the interpreter's
torch now names that commit, and records it with the main command (``torch_overhead
run``, which refuses results under another commit) under ``asv.conf.clone.json``, so
results are keyed and dated by the clone's commits like any other history. A commit
is bad when its figure is at least ``threshold`` times GOOD's: the median time per call
(``--metric time``, threshold 1.10 by default) or the instructions per call on the
calling thread (``--metric instructions``: the seed's metric, counted under callgrind,
which does not move with the machine's load; threshold 1.015 by default, the gate's
margin for counts). A commit that fails to
build, or whose benchmark fails, is skipped (``git bisect skip``): reported, and a
neighbour is tried instead.

Why a search of its own (``next_step``, a dozen lines): ``asv find`` never rebuilds an
``existing`` environment, so its answer says nothing about the commits; ``git bisect``
keeps its state in the checkout's ``.git``, where it would clash with the developer's
own bisect, and moves off a skipped commit pseudo-randomly. The candidates are git's:
``git rev-list --first-parent GOOD..BAD``, the commits ``git bisect start
--first-parent`` visits (PyTorch's main is linear; a merged branch counts as its merge).

State (the bisect's identity and each tested commit's median or skip reason) is
written atomically after every step to ``.asv/bisect-GOOD-BAD.json`` (``--state``; one
file per range, so bisects of other ranges never collide): an interrupted bisect
resumes where it stopped, and a commit already recorded in ``results/`` is read back
instead of rebuilt.

``--good-python PATH`` (time only): an interpreter holding GOOD's build, kept beside the
checkout's (a nightly's environment, a second worktree's build). Each step is then decided by
a paired comparison in one run (``compare``, side A GOOD's build, side B the step's; its band
is ``threshold - 1``): bad when the step is slower, good when the same or faster, skipped when
the comparison stays unknown within ``--budget-seconds``. A median recorded minutes earlier
is no answer on a machine whose medians drift (docs/paired-comparison.md); both builds in the
same minutes are.

Exit status: 0 first bad commit named; 1 not named (only skipped commits left, or
paused by ``--max-steps``); 2 bad input; 130 interrupted (state kept).
"""

import json
import math
import os
import re
import shlex
import socket
import subprocess
import sys

from asv.config import Config
from asv.util import UserError

from ..lib import builds, expected, main_command, paired, recorded
from ..lib.probe import ProbeError, probe
from ..lib.suite import COUNTS, settings
from . import compare

DEFAULT_BUILD = "git submodule update --init --recursive && {python} -m pip install --no-build-isolation -v -e ."
BASE = (False, False, False, False)
# Per --metric: the benchmark bisected by default, the threshold, the unit printed.
METRICS = {
    "time": (recorded.variant_name(settings.HEADLINE, BASE), 1.10, "us"),
    "instructions": (recorded.variant_name(COUNTS, BASE),
                     1 + expected.DEFAULT_MARGINS["instruction_count"], "instructions"),
}
GATE_METRIC = {"time": "us_per_call", "instructions": "instruction_count"}
STATE_VERSION = 2


class BisectError(RuntimeError):
    """Bad input, or an endpoint that cannot be measured: one ``error:`` line, exit 2."""


class Skip(RuntimeError):
    """This commit cannot be measured (it fails to build or to run the benchmark)."""


class Paused(RuntimeError):
    """``--max-steps`` builds done in this invocation."""


def git(checkout, *args):
    result = subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True)
    if result.returncode != 0:
        raise BisectError(f"git {' '.join(args)} in {checkout}: {(result.stderr.strip().splitlines() or ['failed'])[-1]}")
    return result.stdout.strip()


def candidates(checkout, good, bad):
    """``(good, bad, commits)``: full hashes and the first-parent commits after GOOD up to BAD, oldest first."""
    try:
        top = git(checkout, "rev-parse", "--show-toplevel")
    except (BisectError, OSError):
        top = None
    if top is None or os.path.realpath(top) != os.path.realpath(checkout):
        raise BisectError(f"{checkout} is not a git work tree (give --checkout the top of a PyTorch clone)")
    resolved = []
    for name in (good, bad):
        try:
            resolved.append(git(checkout, "rev-parse", "--verify", "--quiet", name + "^{commit}"))
        except BisectError:
            raise BisectError(f"unknown commit {name!r} in {checkout}")
    good, bad = resolved
    if good == bad or subprocess.run(["git", "merge-base", "--is-ancestor", good, bad], cwd=checkout).returncode:
        raise BisectError(f"good {good[:12]} is not an ancestor of bad {bad[:12]}")
    commits = git(checkout, "rev-list", "--first-parent", "--reverse", f"{good}..{bad}").split()
    if git(checkout, "rev-parse", commits[0] + "^") != good:
        raise BisectError(f"good {good[:12]} is not on bad {bad[:12]}'s first-parent history (pick a commit of that branch)")
    return good, bad, commits


def next_step(commits, verdicts):
    """``(commit to test, None)``, or ``(None, [commits the first bad one may be])`` when done.

    ``commits`` is oldest first, the last one bad; ``verdicts`` maps tested commits to
    good, bad or skip. The first bad commit lies after the last good one and at or before
    the first bad one after it; the next test is the untested commit nearest the middle
    (git bisect also moves off a skipped midpoint, but pseudo-randomly: this is repeatable).
    """
    lo = max((i for i, c in enumerate(commits) if verdicts.get(c) == "good"), default=-1)
    hi = min(i for i, c in enumerate(commits) if verdicts.get(c) == "bad" and i > lo)
    untested = [i for i in range(lo + 1, hi) if commits[i] not in verdicts]
    if not untested:
        return None, commits[lo + 1:hi + 1]
    middle = (lo + hi) / 2
    return commits[min(untested, key=lambda i: (abs(i - middle), i))], None


class Bisect:
    def __init__(self, args, conf, good, bad, commits, machine):
        self.args, self.good, self.bad, self.commits, self.machine = args, good, bad, commits, machine
        self.results_dir = os.path.join(args.project_root, conf.results_dir)
        self.log_dir = os.path.join(args.project_root, ".asv", "bisect-logs")
        self.builds = 0  # in this invocation, for --max-steps
        identity = {"checkout": os.path.realpath(args.checkout), "good": good, "bad": bad,
                    "benchmark": args.bench, "metric": args.metric, "machine": machine, "config": args.config}
        if args.good_python:  # a step's verdict is compare's, at the band the threshold sets
            identity.update(good_python=args.good_python, threshold=args.threshold)
        self.unit = METRICS[args.metric][2]
        self.state = {"version": STATE_VERSION, "bisect": identity, "tested": {}}
        if os.path.exists(args.state):
            try:
                with open(args.state, encoding="utf-8") as f:
                    saved = json.load(f)
            except (OSError, ValueError) as err:
                raise BisectError(f"{args.state} is unreadable ({err}); delete it to start afresh")
            if saved.get("version") != STATE_VERSION or saved.get("bisect") != identity:
                raise BisectError(f"{args.state} holds another bisect ({json.dumps(saved.get('bisect'))}); "
                                  "delete it, or pass --state FILE for this one")
            self.state = saved
            print(f"bisect: resuming from {args.state} ({len(saved['tested'])} commits tested)", flush=True)
        self.save()

    def save(self):
        builds.write_json(self.args.state, self.state)

    def subject(self, commit):
        return git(self.args.checkout, "log", "-1", "--format=%s", commit)[:60]

    # -- one commit --------------------------------------------------------------
    def median(self, commit):
        """``(figure, how it was obtained)`` of the benchmark at ``commit`` (median microseconds,
        or instructions): from the state, from results already recorded, or built and recorded
        now. Raises Skip."""
        how = "from the state file"
        if commit not in self.state["tested"]:
            how, self.state["tested"][commit] = self.measure(commit)
            self.save()
        tested = self.state["tested"][commit]
        if "skipped" in tested:
            raise Skip(tested["skipped"])
        return tested["value"], how

    def measure(self, commit):
        if self.args.good_python:
            try:
                self.build(commit)
                return "built and compared with good's build", self.compared(commit)
            except Skip as skip:
                return "", {"skipped": str(skip)}
        value = self.recorded(commit)
        if value is not None:
            return "recorded earlier, reused", {"value": value}
        try:
            self.build_and_record(commit)
        except Skip as skip:
            return "", {"skipped": str(skip)}
        value = self.recorded(commit)
        if value is None:
            return "", {"skipped": f"the run recorded no result for {self.args.bench}"}
        return "built and recorded", {"value": value}

    def recorded(self, commit):
        try:
            results = recorded.results_for_commit(self.results_dir, self.machine, commit)
        except recorded.RecordedResultsError:
            return None
        return expected.measured(results).get(self.args.bench, (None, None))[1]

    def build_and_record(self, commit):
        self.build(commit)
        cmd = main_command.command(self.args.project_root, self.args.device, python=self.args.python, machine=self.machine,
                          config=self.args.config, cpu_affinity=self.args.cpu_affinity,
                          bench="^" + re.escape(self.args.bench) + "$", quick=self.args.quick,
                          attribute=self.args.attribute)
        status = subprocess.run(cmd).returncode
        interrupted(status)
        if status != 0:
            raise Skip(f"the run exited {status} (see above)")

    def compared(self, commit):
        """``{"value": B/A, "verdict": ...}`` of the built ``commit`` against --good-python, by
        compare in a subprocess (its own lock, state and resume). Raises Skip when it fails or
        stays unknown."""
        report = os.path.join(self.log_dir, commit + ".compare.md")
        if os.path.exists(report):
            os.remove(report)
        cmd = compare.command(self.args.project_root, self.args.good_python, self.args.python, self.machine,
                              self.args.device, self.args.cpu_affinity, self.args.budget_seconds, report,
                              ["^" + re.escape(self.args.bench) + "$"], self.args.attribute,
                              "--band", f"{self.args.threshold - 1:g}")
        status = subprocess.run(cmd).returncode
        interrupted(status)
        if status not in (0, 1) or not os.path.exists(report):
            raise Skip(f"compare exited {status} (see above)")
        ((_, ratio, verdict),) = paired.read_report(report).values()
        if ratio is None or verdict not in ("slower", "same", "faster"):
            raise Skip(f"the paired comparison has no verdict ({verdict}) within --budget-seconds "
                       f"{self.args.budget_seconds:g}; report {report}")
        return {"value": ratio, "verdict": verdict}

    def build(self, commit):
        """Check ``commit`` out and build it; the interpreter's torch must then name it. Raises Skip."""
        if self.args.max_steps is not None and self.builds >= self.args.max_steps:
            raise Paused()
        self.builds += 1
        git(self.args.checkout, "checkout", "--quiet", "--detach", commit)
        os.makedirs(self.log_dir, exist_ok=True)
        log_path = os.path.join(self.log_dir, commit + ".log")
        command = self.args.build_command.replace("{python}", shlex.quote(self.args.python))
        print(f"bisect: building {commit[:12]} ({command}; log {log_path})", flush=True)
        with open(log_path, "w") as log:
            status = subprocess.run(command, shell=True, cwd=self.args.checkout, stdout=log,
                                    stderr=subprocess.STDOUT).returncode
        interrupted(status)
        if status != 0:
            with open(log_path, errors="replace") as log:
                last = ([line.strip() for line in log if line.strip()] or ["no output"])[-1]
            raise Skip(f"build failed (exit {status}): {last}")
        try:
            installed = probe(self.args.python).git_version
        except ProbeError as err:
            raise Skip(f"built, but {err}")
        if installed != commit:
            raise Skip(f"built, but the torch in {self.args.python} is {installed[:12]}, not this commit")

    # -- the search --------------------------------------------------------------
    def run(self):
        if self.args.good_python:
            self.good_value = None
            print(f"bisect: good {self.good[:12]} {self.subject(self.good)}: the build in {self.args.good_python}",
                  flush=True)
        else:
            self.good_value = self.endpoint(self.good, "good")
        self.endpoint(self.bad, "bad")
        if self.verdict(self.bad) != "bad":
            raise BisectError(f"bad {self.bad[:12]} is not slower than good by the threshold: {self.against_good(self.bad)}")
        verdicts = {self.bad: "bad"}
        while True:
            commit, suspects = next_step(self.commits, verdicts)
            if commit is None:
                return self.report(suspects)
            try:
                value, how = self.median(commit)
            except Skip as skip:
                verdicts[commit] = "skip"
                print(f"bisect: {commit[:12]} {self.subject(commit)}: skipped ({skip})", flush=True)
                continue
            verdicts[commit] = self.verdict(commit)
            shown = self.against_good(commit) if self.args.good_python else f"{self.show(value)}, ratio {value / self.good_value:.3f}"
            print(f"bisect: {commit[:12]} {self.subject(commit)}: {shown} -> {verdicts[commit]} ({how})", flush=True)

    def verdict(self, commit):
        """bad or good: by the paired comparison's verdict, else by the ratio to good's figure."""
        tested = self.state["tested"][commit]
        if self.args.good_python:
            return "bad" if tested["verdict"] == "slower" else "good"
        return "bad" if tested["value"] / self.good_value >= self.args.threshold else "good"

    def against_good(self, commit):
        tested = self.state["tested"][commit]
        value = tested["value"]
        if self.args.good_python:
            return (f"B/A {value:.3f} against good's build: {tested['verdict']} (paired, 95% interval "
                    f"against 1 +- {self.args.threshold - 1:g})")
        return (f"{self.show(value)} vs good {self.show(self.good_value)}, ratio {value / self.good_value:.3f} "
                f"(threshold {self.args.threshold})")

    def endpoint(self, commit, role):
        try:
            value, how = self.median(commit)
        except Skip as skip:
            del self.state["tested"][commit]  # not remembered: a rerun (a fixed build command) retries it
            self.save()
            raise BisectError(f"{role} {commit[:12]} cannot be measured: {skip}")
        shown = self.against_good(commit) if self.args.good_python else self.show(value)
        print(f"bisect: {role} {commit[:12]} {self.subject(commit)}: {shown} ({how})", flush=True)
        return value

    def show(self, value):
        return f"{value:.2f} us" if self.unit == "us" else f"{value:,.0f} instructions"

    def report(self, suspects):
        tested = [c for c in self.commits[:-1] if c in self.state["tested"]]
        skipped = [c for c in tested if "skipped" in self.state["tested"][c]]
        n = len(self.commits)
        print(f"bisect: {len(tested)} builds between the endpoints for {n} commits in good..bad "
              f"(ceil(log2({n})) = {math.ceil(math.log2(n))}; {len(skipped)} skipped: "
              f"{', '.join(c[:12] for c in skipped) or 'none'}), plus 2 for the endpoints")
        first = suspects[-1]
        line = f"{first[:12]} {self.subject(first)}: {self.against_good(first)}"
        if len(suspects) == 1:
            print(f"first bad commit: {first}\n  {line}")
            return 0
        print("error: the first bad commit could not be named: it is one of "
              f"{', '.join(c[:12] for c in suspects)} (the others failed; the last is {line})", file=sys.stderr)
        return 1


def interrupted(status):
    """A child stopped by Ctrl-C is an interruption of the bisect, not a failed build or run."""
    if status in (130, -2):
        raise KeyboardInterrupt


def main(args):
    args.state = args.state and os.path.abspath(args.state)
    try:
        try:
            conf = Config.load(os.path.join(args.project_root, args.config))
        except UserError as err:
            raise BisectError(str(err))
        args.checkout = os.path.abspath(args.checkout or os.path.join(args.project_root, conf.repo))
        default_bench, default_threshold, _ = METRICS[args.metric]
        args.bench = args.bench or default_bench
        args.threshold = args.threshold or default_threshold
        if args.threshold <= 1:
            raise BisectError(f"--threshold {args.threshold}: give a ratio above 1 (1.10 = 10% slower is bad)")
        if args.good_python:
            check_good_python(args)
        args.bench = check_benchmark(os.path.join(args.project_root, conf.results_dir), args.bench)
        if expected.metric_of(args.bench) != GATE_METRIC[args.metric]:
            raise BisectError(f"--bench {args.bench} is not a figure of --metric {args.metric}: give a "
                              f"{'time_*' if args.metric == 'time' else 'track_instructions'} benchmark, "
                              f"e.g. {default_bench}")
        good, bad, commits = candidates(args.checkout, args.good, args.bad)
        if args.good_python:
            check_good_build(args.good_python, good)
        args.state = args.state or os.path.join(args.project_root, ".asv", f"bisect-{good[:12]}-{bad[:12]}.json")
        if git(args.checkout, "status", "--porcelain", "--untracked-files=no"):
            raise BisectError(f"{args.checkout} has uncommitted changes; commit or stash them first")
        machine = args.machine or default_machine(args)
        return Bisect(args, conf, good, bad, commits, machine).run()
    except BisectError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Paused:
        print(f"bisect: paused after {args.max_steps} builds (--max-steps); state kept in {args.state}; "
              "run the same command again to continue", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = f"state kept in {args.state}" if args.state and os.path.exists(args.state) else "nothing tested yet"
        print(f"error: interrupted; {kept}; run the same command again to resume", file=sys.stderr)
        return 130


def check_good_python(args):
    if args.metric != "time":
        raise BisectError("--good-python compares times; counts need no paired comparison (they do not move "
                          "with the machine's load): drop --good-python, or use --metric time")
    if not 1 < args.threshold < 2:
        raise BisectError(f"--threshold {args.threshold} with --good-python: give a ratio between 1 and 2 (1.10: "
                          "bad when the step is surely more than 10% slower than good's build)")
    args.good_python = os.path.abspath(args.good_python)


def check_good_build(python, good):
    try:
        installed = probe(python).git_version
    except ProbeError as err:
        raise BisectError(f"--good-python: {err}")
    if installed != good:
        raise BisectError(f"--good-python {python} holds torch {installed[:12]}, not good {good[:12]}: "
                          "give an interpreter with good's build")


def check_benchmark(results_dir, pattern):
    """The one benchmark variant ``--bench`` selects, refused before the first (long) build
    when the suite does not have it, once asv has listed the suite (``results/benchmarks.json``,
    written by every run)."""
    try:
        known = recorded.suite_variants(results_dir)
        return pattern if known is None else recorded.select_one(pattern, known, "benchmark variant")
    except recorded.RecordedResultsError as err:
        raise BisectError(str(err))


def default_machine(args):
    """The machine name the main command would pick, known before anything is built:
    results already recorded for a commit are looked up under it."""
    try:
        build = probe(args.python)
        return build.default_machine_name(build.resolve_device(args.device), socket.gethostname())
    except ProbeError as err:
        raise BisectError(f"{err} (or give --machine)")
