"""Backfill: record several PyTorch builds in turn, each in its own throwaway environment.

``python -m torch_overhead backfill 2.13.0 2.14.1 path/to/torch-X.whl wheels-dir/ [--device cpu]``

Each build is given as a torch version (downloaded with pip from the configured index),
a wheel file, or a directory of wheels, optionally followed by ``@COMMIT``: the commit
(or a prefix) the build must carry. For each one: the wheel is fetched into a temporary
folder and dated by its own build date (the newest time stamp in the wheel), a fresh
virtual environment gets that torch (and numpy; ``pip --no-cache-dir``, so no pip cache
is left behind), the installed build is checked to be the one named (version, and commit
when given), the build is added to the build index under the wheel's date, the main
command (``run``) records it, and the temporary folder is deleted. Each build's wall
time and disk use are printed.

``--bench REGEX`` (repeatable) is passed to ``run``: e.g. ``--bench '^(?!compile_time\\.)'``
records the default suite and the instruction counts, without the minutes of compile times.

Resuming: a build whose commit already has results on the machine for every selected
variant (``name(params)``, with ``--bench``; without it, any results) is skipped, before it is downloaded
when its version is already in the index and ``--machine`` is given, else right after its
install; a build with some of them runs only the others. An interrupted backfill run again
does only what is missing, and replaces nothing recorded.

Sharding: ``--shard K/N`` records only builds i (counting from 0, in the order given) with
``i % N == K - 1``, so that N machines (a CI matrix, a Slurm array) share one list;
``backfill --merge DIR...`` then merges their projects' results/ and builds.json into
this one (``lib/builds.merge``; docs/backfill.md has the examples). With ``--bench`` it takes
only the variants those patterns select from each shard, and with ``--replace`` they replace
what is recorded: for a run made with ``run --replace --bench`` on a copy of this project.

A build that cannot be downloaded, installed or imported, or is not the build it was
named as, is reported in one ``error:`` line and skipped; the others still run.
Exit status: 0 all recorded (or already recorded), 1 otherwise.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv

from ..lib import builds, main_command, recorded
from ..lib.machine import MachineError, check_name
from ..lib.probe import ProbeError, probe


class BuildSpecError(RuntimeError):
    pass


# Releases built against NumPy 1.x fail to import beside NumPy 2 (their binaries were
# compiled before its ABI change): those get a NumPy of that series. (first good release, pin)
NUMPY_PINS = (((2, 4), "numpy<2"),)


def parse(spec):
    """``(pip download arguments, expected version or None, expected commit prefix or None)``."""
    spec, _, commit = spec.partition("@")
    if os.path.isdir(spec):
        return ["--no-index", "--find-links", os.path.abspath(spec), "torch"], None, commit or None
    if spec.endswith(".whl"):
        if not os.path.isfile(spec):
            raise BuildSpecError(f"{spec}: no such wheel file")
        return [os.path.abspath(spec)], wheel_version(spec), commit or None
    if spec and spec[0].isdigit():
        return [f"torch=={spec}"], spec, commit or None
    raise BuildSpecError(f"{spec!r} is neither a torch version, a .whl file nor a directory of wheels")


def wheel_version(path):
    # torch-2.14.1+cu130-cp311-...whl: the second field is the version
    return os.path.basename(path).split("-")[1]


def shard(items, spec):
    """The slice ``K/N`` of ``items``: those at positions i with ``i % N == K - 1``."""
    match = re.fullmatch(r"(\d+)/(\d+)", spec or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise BuildSpecError(f"--shard {spec}: give K/N with 1 <= K <= N, e.g. --shard 2/4")
    k, n = int(match.group(1)), int(match.group(2))
    return [item for i, item in enumerate(items) if i % n == k - 1]


def fetch(pip_args, workdir):
    """The torch wheel, downloaded (or copied) into ``workdir``; raises BuildSpecError."""
    dest = os.path.join(workdir, "wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-cache-dir",
         "--no-deps", "-d", dest, *pip_args],
        capture_output=True, text=True,
    )
    wheels = glob.glob(os.path.join(dest, "torch-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")] or ["no torch wheel"]
        raise BuildSpecError(f"pip download {' '.join(pip_args)} failed: {lines[-1]}")
    return wheels[0]


def install(wheel, workdir):
    """A fresh venv holding that torch wheel; returns its python or raises BuildSpecError."""
    env_dir = os.path.join(workdir, "venv")
    venv.create(env_dir, with_pip=True)
    python = os.path.join(env_dir, "bin", "python")
    release = tuple(int(x) for x in re.findall(r"\d+", wheel_version(wheel))[:2])
    numpy = next((pin for first_good, pin in NUMPY_PINS if release < first_good), "numpy")
    result = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-cache-dir", wheel, numpy],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")] or ["pip failed"]
        raise BuildSpecError(f"pip install {os.path.basename(wheel)} failed: {lines[-1]}")
    return python


def check_identity(build, version, commit):
    """The installed build must be the one the spec names: never record it under another label."""
    if version and build.version.split("+")[0] != version.split("+")[0]:
        raise BuildSpecError(f"asked for torch {version}, the environment holds {build.version}")
    if commit and not build.git_version.startswith(commit.lower()):
        raise BuildSpecError(
            f"the build is labelled {commit} but torch {build.version} was built from {build.git_version[:12]}"
        )


def still_to_run(project_root, machine, commit, patterns):
    """What a rerun must still record of ``commit`` on ``machine``: ``None`` when nothing is
    recorded (run it all), ``[]`` when done (every variant the patterns select has a result;
    without patterns, any result), else one ``--bench`` pattern per missing variant, so that a
    resumed build records only those and never replaces what it has. Variants, not benchmarks:
    a build with the per-layer counts of one variant still lacks those of another."""
    if not machine:
        return None
    try:
        results = recorded.results_for_commit(os.path.join(project_root, "results"), machine, commit)
    except recorded.RecordedResultsError:
        return None
    # None: it failed there, to be run again; NaN: skipped, done
    done = {variant for variant, value, _ in recorded.recorded_variants(results) if value is not None}
    if not done:
        return None
    if not patterns:
        return []
    listing = os.path.join(project_root, "results", "benchmarks.json")
    try:
        suite = recorded.suite_variants(os.path.dirname(listing))
    except recorded.RecordedResultsError as err:
        raise BuildSpecError(str(err))
    if suite is None:  # results recorded, but not asv's listing of the suite beside them
        raise BuildSpecError(f"{listing} is missing; restore it with `git checkout -- {listing}`")
    wanted = {variant for variant in suite if any(re.search(p, variant) for p in patterns)}
    return [f"^{re.escape(variant)}$" for variant in sorted(wanted - done)]


def known_commit(index, version):
    """The commit the index already holds for a release ``version`` (``2.13.0`` also finds
    ``2.13.0+cpu``, which ``pip install torch==2.13.0`` may install), or None."""
    for build in builds.load(index):
        if build["version"] == version or ("+" not in version and build["version"].split("+")[0] == version):
            return build["commit"]
    return None


def disk_use(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(path) for f in names
               if not os.path.islink(os.path.join(d, f)))


def record(args, spec, workdir):
    """One build; returns "recorded" or "skipped", or raises BuildSpecError/ProbeError."""
    index = os.path.join(args.project_root, "builds.json")
    pip_args, version, commit = parse(spec)
    known = commit if commit and len(commit) == 40 else (known_commit(index, version) if version else None)
    if known and still_to_run(args.project_root, args.machine, known, args.bench) == []:
        return "skipped"
    wheel = fetch(pip_args, workdir)
    date = builds.wheel_date(wheel)
    print(f"    {os.path.basename(wheel)} ({os.path.getsize(wheel) / 1e9:.2f} GB, built {date}); "
          "installing it into a fresh environment", flush=True)
    python = install(wheel, workdir)
    build = probe(python)
    check_identity(build, version or wheel_version(wheel), commit)
    machine = args.machine or build.default_machine_name(build.resolve_device(args.device), os.uname().nodename)
    missing = still_to_run(args.project_root, machine, build.git_version, args.bench)
    if missing == []:
        return "skipped"
    if missing:
        print(f"    recorded before, except {len(missing)} benchmarks: running those", flush=True)
    builds.register(index, build.git_version, build.version, date=date)
    cmd = main_command.command(args.project_root, args.device, python=python, machine=args.machine,
                               bench=missing or args.bench)
    status = subprocess.run(cmd).returncode
    if status != 0:
        raise BuildSpecError(f"the run exited {status} (see above)")
    return "recorded"


def merge(args):
    patterns = [re.compile(p) for p in args.bench or []]
    select = (lambda variant: any(p.search(variant) for p in patterns)) if patterns else None
    try:
        for line in builds.merge(args.project_root, args.merge, select, args.replace):
            print(line)
    except builds.BuildIndexError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def main(args):
    # Checked before the first download (gigabytes), as run would refuse them after it.
    try:
        check_name(args.machine or "unset")
    except MachineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for pattern in args.bench or []:
        try:
            re.compile(pattern)
        except re.error as err:
            print(f"error: --bench {pattern!r} is not a valid regular expression ({err})", file=sys.stderr)
            return 2
    if args.replace and not (args.merge and args.bench):
        print("error: --replace goes with --merge and --bench: name the variants each shard's run measured "
              "(its other variants may be copies of older figures)", file=sys.stderr)
        return 2
    if args.merge:
        if args.builds or args.shard:
            print("error: --merge takes only the shard folders; record builds in a separate call", file=sys.stderr)
            return 2
        return merge(args)
    try:
        specs = shard(args.builds, args.shard) if args.shard else args.builds
    except BuildSpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not specs:
        print("error: no build to record: name torch versions, wheels or wheel folders "
              "(or --merge DIR... to merge shards)", file=sys.stderr)
        return 2
    failed = 0
    for number, spec in enumerate(specs, 1):
        print(f"=== build {number}/{len(specs)}: {spec}", flush=True)
        start = time.perf_counter()
        workdir = tempfile.mkdtemp(prefix="torch-overhead-backfill-")
        disk = 0
        try:
            outcome = record(args, spec, workdir)
            disk = disk_use(workdir)
            print(f"=== build {number} {outcome if outcome == 'recorded' else 'already recorded, skipped'} "
                  f"in {time.perf_counter() - start:.0f} s wall, {disk / 1e9:.1f} GB on disk", flush=True)
        except (BuildSpecError, ProbeError, builds.BuildIndexError) as err:
            failed += 1
            print(f"error: {spec}: {err}; skipped ({time.perf_counter() - start:.0f} s wall)",
                  file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0
