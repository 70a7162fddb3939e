"""The main command: benchmark the torch build installed in an interpreter, record it, publish.

Before anything else, the options are checked (``--machine`` is a name, ``--config`` a
readable asv config, ``--bench`` valid regular expressions, ``--attribute`` and
``--cpu-affinity`` as asv parses them, results/ writable) and the checkout's run lock is
taken (``lib/guard.py``: asv itself does not lock its results files). Then, each step
printed as it starts:

1. probe the interpreter's torch (version, ``git_version``, CUDA, GPU model), pick the
   device (``--device auto|cuda|cpu``) and a machine name that names it;
2. check the results already recorded (``recorded.check``), refuse to replace recorded
   figures without ``--replace`` (``lib/rerun.py``; a ``--quick`` run never replaces a full
   one), and add the build to the build index (``builds.register``), or, under a config
   whose repository is a PyTorch clone (``--config asv.conf.clone.json``), check that the
   clone holds the build's commit;
3. register the machine: this host's facts, or the recorded ones when the machine is
   already recorded (``lib/machine.py``);
4. ``asv run`` the suite under the build's commit, with asv's own progress output;
5. ``asv publish`` the dashboard into a temporary folder and swap it in for ``html/``
   (``lib/dashboard.py``).

Exit status:

- 0: recorded and published.
- 1: some benchmark variants failed (the others are recorded and published), or
  ``asv publish`` failed (the results are recorded; the previous dashboard is kept).
- 2: bad input, or a refusal (another run holds the lock, figures would be replaced,
  nothing matched ``--bench``): one ``error:`` line, nothing recorded.
- 130: interrupted (Ctrl-C); the ``error:`` line says what was recorded and what was not.
"""

import argparse
import glob
import os
import re
import signal
import socket
import subprocess
import sys

from asv.commands.common_args import add_bench
from asv.config import Config
from asv.environment import get_env_name
from asv.repo import NoSuchNameError, get_repo
from asv.util import UserError

from ..asv_plugins.environment import InstalledTorch
from ..asv_plugins.repo import RUN_COMMIT_ENV_VAR, TorchBuildIndex
from ..lib import builds, dashboard, guard, machine, recorded, rerun, valgrind
from ..lib.benchmark_env import benchmark_env, env_tags
from ..lib.probe import ProbeError, probe
from ..lib.suite import settings

ENV_TYPE = InstalledTorch.tool_name
# Benchmarks that take minutes, by asv name prefix: only run with --slow (or when named by
# --bench). On CUDA the C++-wrapper layer is one too: it would take the default run on the
# H200 past 5 minutes (docs/cost.md).
SLOW_BENCHMARKS = ("compile_time", "instruction_count")
SLOW_ON_CUDA = (r"layers\.InductorCppWrapper",)
# Seconds asv gets to stop on its own after a Ctrl-C before it is sent one itself (it got
# none when only this process was signalled).
ASV_STOP_S = 5


class CloneError(RuntimeError):
    """The config's PyTorch clone is missing, or lacks the build's commit."""


class OptionError(RuntimeError):
    """An option is unusable; checked before anything is probed, written or run."""


_now = {"step": "before step 1"}  # what an interruption interrupted, for its message


def _step(number, text):
    _now["step"] = f"step {number}/5 ({text})"
    print(f"[{number}/5] {text}", flush=True)


def asv(args, env, project_root, config, lock):
    """Run an asv command with ``config`` in the project root (where the configs and the plugins are).

    asv shares the run lock (an inherited descriptor): should this process be killed, the lock
    stays held until asv has written its results. On Ctrl-C, asv is waited for rather than
    killed: it writes results files in place, and a kill during that write would truncate one."""
    subcommand, *rest = args
    proc = subprocess.Popen([sys.executable, "-m", "asv", subcommand, "--config", config, *rest],
                            cwd=project_root, env=env, pass_fds=(lock.fileno(),))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=ASV_STOP_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            proc.wait()
        raise


def check_options(args):
    """Every option, checked before anything is probed, written or run; returns the asv config."""
    if args.machine:
        try:
            machine.check_name(args.machine)
        except machine.MachineError as err:
            raise OptionError(str(err))
    path = os.path.join(args.project_root, args.config)
    if not os.path.isfile(path):
        raise OptionError(f"--config {args.config}: no such file in {args.project_root}; "
                          "give asv.conf.json or asv.conf.clone.json")
    try:
        conf = Config.load(path)
    except (UserError, ValueError, OSError) as err:
        raise OptionError(f"--config {args.config} is not a usable asv config ({str(err).splitlines()[0]})")
    for pattern in args.bench or []:
        try:
            re.compile(pattern)
        except re.error as err:
            raise OptionError(f"--bench {pattern!r} is not a valid regular expression ({err})")
    # --attribute and --cpu-affinity as asv run itself parses them, so that asv cannot reject them later.
    parser = argparse.ArgumentParser(exit_on_error=False, add_help=False)
    add_bench(parser)
    given = [f"--attribute={a}" for a in args.attribute or []]
    given += [f"--cpu-affinity={args.cpu_affinity}"] if args.cpu_affinity != "none" else []
    try:
        parser.parse_args(given)
    except argparse.ArgumentError as err:
        raise OptionError(f"{err}; e.g. --attribute rounds=3, --cpu-affinity 1 (or none)")
    results_dir = os.path.join(args.project_root, conf.results_dir)
    writes = [results_dir, os.path.join(results_dir, "benchmarks.json"),
              os.path.dirname(os.path.normpath(os.path.join(args.project_root, conf.html_dir)))]
    if args.machine:
        writes += [os.path.join(results_dir, args.machine)]
        writes += glob.glob(os.path.join(results_dir, args.machine, "*.json"))
    for path in writes:
        _check_writable(path)
    return conf


def _check_writable(path):
    """``path``, or the folder it would be created in, is writable by this user."""
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK):
        raise OptionError(f"{existing} is not writable by this user, so nothing could be recorded; "
                          "fix its permissions (or run as its owner)")


def check_in_clone(conf, commit, project_root):
    """Under a config whose repository is a PyTorch clone, history comes from git: asv files
    and dates results by the clone's commits, so the build's commit must be in it. Resolved
    by asv's own repository object, as `asv run` would (a URL is mirror-cloned by asv)."""
    local = os.path.join(project_root, conf.repo)
    conf.repo = local if os.path.isdir(local) else conf.repo
    conf.project = os.path.join(project_root, conf.project)  # where asv mirror-clones a URL
    try:
        get_repo(conf).get_hash_from_name(commit)
    except NoSuchNameError:
        raise CloneError(f"torch commit {commit[:12]} is not in the clone {conf.repo}: fetch it there, "
                         "or point the config's repo at the checkout the build came from")
    except UserError as err:
        raise CloneError(f"repo {conf.repo} is not a usable clone: {err}")


def check_replace(results_dir, machine_name, commit, env_name, patterns, args):
    """Refuse to replace recorded figures unless asked (``--replace``); a ``--quick`` run never
    replaces a full run's figures. A full run over figures that all came from ``--quick``
    runs goes ahead: a smoke test is not history."""
    variants, full = rerun.replaced(results_dir, machine_name, commit, env_name, patterns)
    if not variants:
        return
    what = (f"{len(variants)} recorded variant{'s' * (len(variants) != 1)} of this build on machine "
            f"{machine_name} (e.g. {variants[0]})")
    if args.quick and full:
        raise recorded.RecordedResultsError(
            f"--quick would replace {what} from a full run with one sample each; a --quick run never "
            "replaces a full one: run without --quick, or record the smoke test under another --machine")
    if not args.replace and (full or args.quick):
        raise recorded.RecordedResultsError(
            f"this run would replace {what}; give --replace to replace them, or select others with --bench")
    print(f"      replacing {what}" + ("" if args.replace else " (all from --quick runs)"))


def check_index(index, results_dir):
    """The build index is readable, and present wherever results are: without it, a run would
    start a new index that re-dates this build and leaves the others off the dashboard."""
    recorded_files = glob.glob(os.path.join(results_dir, "*", "*-*.json"))
    if not os.path.exists(index) and recorded_files:
        raise builds.BuildIndexError(
            f"{index} is missing, but {results_dir} holds {len(recorded_files)} results files of the builds it "
            f"listed: restore it with `git checkout -- {os.path.basename(index)}`")
    builds.load(index)


def prepare(args, conf, patterns):
    """Steps 1-2. Returns (build, device, machine name); bad input raises ProbeError,
    RecordedResultsError, BuildIndexError or CloneError with nothing written."""
    project_root = args.project_root
    _step(1, f"probing torch in {args.python}")
    build = probe(args.python)
    device = build.resolve_device(args.device)
    machine_name = args.machine or build.default_machine_name(device, socket.gethostname())
    where = build.gpu if device == "cuda" else "CPU"
    print(f"      torch {build.version} @ {build.git_version[:12]} on {device} ({where}); machine {machine_name}")
    _step(2, "checking recorded results and the build index")
    env_name = get_env_name(ENV_TYPE, build.python_version, {}, env_tags(device, settings.pinning_tag(args.cpu_affinity)))
    at_root = lambda path: os.path.join(project_root, path)  # noqa: E731 (asv.conf.json paths are relative)
    results_dir = at_root(conf.results_dir)
    recorded.check(results_dir, machine_name, build.git_version, env_name, at_root(conf.benchmark_dir))
    index = at_root(conf.repo)
    if conf.dvcs == TorchBuildIndex.dvcs:
        check_index(index, results_dir)
    check_replace(results_dir, machine_name, build.git_version, env_name, patterns(device), args)
    if conf.dvcs != TorchBuildIndex.dvcs:
        check_in_clone(conf, build.git_version, project_root)
        print(f"      commit {build.git_version[:12]} is in the clone {conf.repo}")
        return build, device, machine_name
    entry = builds.register(index, build.git_version, build.version)
    print(f"      build {entry['commit'][:12]} = torch {entry['version']} ({entry['channel']}, {entry['date']})")
    return build, device, machine_name


def main(args):
    try:
        valgrind.check()
        conf = check_options(args)
        lock = guard.lock(args.project_root)
    except (OptionError, guard.LockedError, valgrind.ValgrindError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with lock:
        at_root = lambda path: os.path.join(args.project_root, path)  # noqa: E731
        watched = [at_root(conf.results_dir), at_root(conf.html_dir)]
        watched += [at_root(conf.repo)] if conf.dvcs == TorchBuildIndex.dvcs else []
        before = guard.fingerprint(watched)
        try:
            return record(args, conf, lock)
        except KeyboardInterrupt:
            changed = sorted(set(before.items()) ^ set(guard.fingerprint(watched).items()))
            print(f"error: interrupted during {_now['step']}; {_changes(changed, args.project_root, conf)}",
                  file=sys.stderr)
            return 130


def _changes(changed, project_root, conf):
    """What an interrupted run changed, in words, from the files whose bytes changed: results
    files (figures), asv's bookkeeping beside them (machine.json, benchmarks.json), the build
    index, and the dashboard."""
    paths = sorted({os.path.relpath(path, project_root) for path, _ in changed})
    html = os.path.normpath(conf.html_dir)
    dashboard_changed = any(p.startswith(html + os.sep) for p in paths)
    paths = [p for p in paths if not p.startswith(html + os.sep)]
    bookkeeping = ("machine.json", "benchmarks.json", os.path.basename(conf.repo))
    figures = [p for p in paths if os.path.basename(p) not in bookkeeping]
    text = f"recorded: {', '.join(figures)}" if figures else "no figures were recorded"
    others = [p for p in paths if p not in figures]
    text += f"; also changed: {', '.join(others)}" if others else ""
    return text + ("; the dashboard was updated" if dashboard_changed
                   else f"; the dashboard {html}/ is the previous one")


def record(args, conf, lock):
    """Steps 1 to 5, under the lock; returns the exit status."""
    project_root = args.project_root

    def patterns(device):
        slow = SLOW_BENCHMARKS + (SLOW_ON_CUDA if device == "cuda" else ())
        return args.bench or ([] if args.slow else ["^(?!(" + "|".join(slow) + r")\.)"])

    try:
        build, device, machine_name = prepare(args, conf, patterns)
        _step(3, f"registering asv machine {machine_name}")
        results_dir = os.path.join(project_root, conf.results_dir)
        note = machine.register(results_dir, machine_name)
    except (ProbeError, recorded.RecordedResultsError, builds.BuildIndexError, CloneError,
            machine.MachineError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if note:
        print(f"      note: {note}")

    _step(4, f"running the suite on {device} (asv run)")
    # --steps 1: with an existing environment asv runs the suite once per distinct branch
    # tip (all saved under the set hash); one pass is all an installed build can give.
    run_args = [
        "run", "--machine", machine_name, "--set-commit-hash", build.git_version,
        "-E", f"{ENV_TYPE}:{build.python}", "--show-stderr", "--steps", "1",
    ]
    if args.cpu_affinity != "none":
        run_args += ["--cpu-affinity", args.cpu_affinity]
    env = benchmark_env(device, build.git_version, project_root, patterns(device), settings.pinning_tag(args.cpu_affinity))
    for pattern in patterns(device):
        run_args += ["--bench", pattern]
    if args.quick:
        run_args.append("--quick")
    for attribute in args.attribute or []:
        run_args += ["--attribute", attribute]
    machine_dir = os.path.join(results_dir, machine_name)
    backup_dir = os.path.join(project_root, ".asv", "run-backup")
    try:
        kept = guard.KeepValid([os.path.join(results_dir, "benchmarks.json"),
                                *glob.glob(os.path.join(machine_dir, "*.json"))], backup_dir)
    except OSError as err:
        print(f"error: cannot copy the results files into {backup_dir} before the run ({err.strerror or err}); "
              "free disk space and run again", file=sys.stderr)
        return 2
    before = guard.fingerprint([machine_dir])
    try:
        run_status = asv(run_args, {**env, RUN_COMMIT_ENV_VAR: build.git_version}, project_root, args.config, lock)
    finally:
        for path in kept.restore_broken():
            print(f"note: asv left {path} half-written; restored the copy taken before the run", file=sys.stderr)
    recorded_now = [p for p in set(guard.fingerprint([machine_dir]).items()) - set(before.items())
                    if os.path.basename(p[0]) != "machine.json"]
    if not recorded_now:
        print("error: asv recorded nothing (no benchmark matched --bench, the suite did not import, or asv was "
              "stopped); "
              "see asv's message above; benchmark names look like runtime_overhead.RuntimeOverhead.time_add1",
              file=sys.stderr)
        return 2

    _step(5, "publishing the dashboard (asv publish)")
    try:
        published = dashboard.publish(project_root, args.config, env)
    except OSError as err:
        published, reason = 1, f"{err.filename}: {err.strerror}"
    else:
        reason = "see its output above"
    if published != 0:
        print(f"error: `asv publish` failed ({reason}); the results are recorded and the previous dashboard "
              f"is kept; run `python -m asv publish` once that is fixed", file=sys.stderr)
        return 1
    print(f"Dashboard: {os.path.join(project_root, conf.html_dir, 'index.html')} (serve it with `asv preview`)")
    if run_status != 0:
        print("error: some benchmark variants failed (see above); the others are recorded", file=sys.stderr)
        return 1
    return 0
