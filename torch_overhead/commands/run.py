"""The main command: benchmark the torch build installed in an interpreter, record it, publish.

Steps, each printed as it starts:

1. probe the interpreter's torch (version, ``git_version``, CUDA, GPU model);
2. pick the device (``--device auto|cuda|cpu``) and a machine name that names it;
3. check the results already recorded (``recorded.check``) and add the build to the
   build index (``builds.register``), or, under a config whose repository is a PyTorch
   clone (``--config asv.conf.clone.json``), check that the clone holds the build's commit;
4. register the machine (with its host facts) and ``asv run`` the suite under the build's commit,
   with asv's own progress output;
5. ``asv publish`` the dashboard into ``html/``.

Anything wrong before step 4 is one ``error:`` line and exit status 2, with nothing
written. Benchmarks that fail in step 4 are reported by asv and give exit status 1;
the variants that ran are still recorded.
"""

import os
import socket
import subprocess
import sys

from asv.config import Config
from asv.environment import get_env_name
from asv.machine import Machine, MachineCollection
from asv.repo import NoSuchNameError, get_repo
from asv.util import UserError

from ..asv_plugins.environment import InstalledTorch
from ..asv_plugins.repo import RUN_COMMIT_ENV_VAR, TorchBuildIndex
from ..lib import builds, recorded, valgrind
from ..lib.benchmark_env import benchmark_env
from ..lib.probe import ProbeError, probe
from ..lib.suite import settings

ENV_TYPE = InstalledTorch.tool_name
# Benchmarks that take minutes, by asv name prefix: only run with --slow (or when named by
# --bench). On CUDA the C++-wrapper layer is one too: it would take the default run on the
# H200 past 5 minutes (docs/cost.md).
SLOW_BENCHMARKS = ("compile_time", "instruction_count")
SLOW_ON_CUDA = (r"layers\.InductorCppWrapper",)


class CloneError(RuntimeError):
    """The config's PyTorch clone is missing, or lacks the build's commit."""


def _step(number, text):
    print(f"[{number}/5] {text}", flush=True)


def asv(args, env, project_root, config):
    """Run an asv command with ``config`` in the project root (where the configs and the plugins are)."""
    subcommand, *rest = args
    return subprocess.run([sys.executable, "-m", "asv", subcommand, "--config", config, *rest],
                          cwd=project_root, env=env).returncode


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


def prepare(python, device, machine, project_root, config):
    """Steps 1-2. Returns (build, device, machine); bad input raises ProbeError,
    RecordedResultsError, BuildIndexError or CloneError with nothing written."""
    _step(1, f"probing torch in {python}")
    build = probe(python)
    device = build.resolve_device(device)
    machine = machine or build.default_machine_name(device, socket.gethostname())
    where = build.gpu if device == "cuda" else "CPU"
    print(f"      torch {build.version} @ {build.git_version[:12]} on {device} ({where}); machine {machine}")
    _step(2, "checking recorded results and the build index")
    env_name = get_env_name(ENV_TYPE, build.python_version, {}, {("nobuild", settings.DEVICE_ENV_VAR): device})
    conf = Config.load(os.path.join(project_root, config))
    at_root = lambda path: os.path.join(project_root, path)  # noqa: E731 (asv.conf.json paths are relative)
    recorded.check(at_root(conf.results_dir), machine, build.git_version, env_name, at_root(conf.benchmark_dir))
    if conf.dvcs != TorchBuildIndex.dvcs:
        check_in_clone(conf, build.git_version, project_root)
        print(f"      commit {build.git_version[:12]} is in the clone {conf.repo}")
        return build, device, machine
    entry = builds.register(at_root(conf.repo), build.git_version, build.version)
    print(f"      build {entry['commit'][:12]} = torch {entry['version']} ({entry['channel']}, {entry['date']})")
    return build, device, machine


def main(args):
    project_root = args.project_root
    try:
        valgrind.check()
        build, device, machine = prepare(args.python, args.device, args.machine, project_root, args.config)
    except (ProbeError, recorded.RecordedResultsError, builds.BuildIndexError, CloneError,
            valgrind.ValgrindError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _step(3, f"registering asv machine {machine}")
    # Not `asv machine --machine NAME --yes`: given a name, it stores only the name. Store
    # the host facts asv would guess (CPU, cores, OS, memory) so results say what ran them.
    MachineCollection.save(machine, {**Machine.get_defaults(), "machine": machine})

    _step(4, f"running the suite on {device} (asv run)")
    # --steps 1: with an existing environment asv runs the suite once per distinct branch
    # tip (all saved under the set hash); one pass is all an installed build can give.
    run_args = [
        "run", "--machine", machine, "--set-commit-hash", build.git_version,
        "-E", f"{ENV_TYPE}:{build.python}", "--show-stderr", "--steps", "1",
    ]
    if args.cpu_affinity != "none":
        run_args += ["--cpu-affinity", args.cpu_affinity]
    slow = SLOW_BENCHMARKS + (SLOW_ON_CUDA if device == "cuda" else ())
    patterns = args.bench or ([] if args.slow else ["^(?!(" + "|".join(slow) + r")\.)"])
    env = benchmark_env(device, build.git_version, project_root, patterns)
    for pattern in patterns:
        run_args += ["--bench", pattern]
    if args.quick:
        run_args.append("--quick")
    for attribute in args.attribute or []:
        run_args += ["--attribute", attribute]
    run_status = asv(run_args, {**env, RUN_COMMIT_ENV_VAR: build.git_version}, project_root, args.config)
    if run_status == 1:
        print("error: asv recorded nothing (no benchmark matched --bench, or the suite did not import); "
              "see asv's message above; benchmark names look like runtime_overhead.RuntimeOverhead.time_add1",
              file=sys.stderr)
        return 2

    _step(5, "publishing the dashboard (asv publish)")
    if asv(["publish"], env, project_root, args.config) != 0:
        print("error: `asv publish` failed; see its output above. Results are recorded.", file=sys.stderr)
        return 1
    html_dir = Config.load(os.path.join(project_root, args.config)).html_dir
    print(f"Dashboard: {os.path.join(project_root, html_dir, 'index.html')} (serve it with `asv preview`)")
    if run_status != 0:
        print("error: some benchmark variants failed (see above); the others are recorded", file=sys.stderr)
        return 1
    return 0
