"""Backfill: record several PyTorch builds in turn, each in its own throwaway environment.

``python -m torch_overhead backfill 2.13.0 2.14.1 path/to/torch-X.whl wheels-dir/ [--device cpu]``

Each build is given as a torch version (installed with pip from the configured index),
a wheel file, or a directory of wheels (``--no-index --find-links``), optionally followed
by ``@COMMIT``: the commit (or a prefix) the build must carry. For each one: a fresh
virtual environment, ``pip install`` of that torch (and numpy), a check that the
installed build is the one named (version, and commit when given), then the main
command (``run``) against that interpreter, and the environment is deleted. Builds are
recorded in the order given, which for release builds is also their order on the
history axis (they are dated when first recorded).

A build that cannot be installed, or is not the build it was named as, is reported in
one line and skipped; the others still run. Exit status: 0 all recorded, 1 otherwise.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv

from ..lib import main_command
from ..lib.probe import ProbeError, probe


class BuildSpecError(RuntimeError):
    pass


def parse(spec):
    """``(pip arguments, expected version or None, expected commit prefix or None)``."""
    spec, _, commit = spec.partition("@")
    if os.path.isdir(spec):
        return ["--no-index", "--find-links", spec, "torch"], None, commit or None
    if spec.endswith(".whl"):
        if not os.path.isfile(spec):
            raise BuildSpecError(f"{spec}: no such wheel file")
        # torch-2.14.1+cu130-cp311-...whl: the second field is the version
        return [os.path.abspath(spec)], os.path.basename(spec).split("-")[1], commit or None
    if spec and spec[0].isdigit():
        return [f"torch=={spec}"], spec, commit or None
    raise BuildSpecError(f"{spec!r} is neither a torch version, a .whl file nor a directory of wheels")


def install(pip_args, workdir):
    """A fresh venv holding that torch; returns its python or raises BuildSpecError."""
    env_dir = os.path.join(workdir, "venv")
    venv.create(env_dir, with_pip=True)
    python = os.path.join(env_dir, "bin", "python")
    result = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *pip_args, "numpy"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")] or ["pip failed"]
        raise BuildSpecError(f"pip install {' '.join(pip_args)} failed: {lines[-1]}")
    return python


def check_identity(build, version, commit):
    """The installed build must be the one the spec names: never record it under another label."""
    if version and build.version.split("+")[0] != version.split("+")[0]:
        raise BuildSpecError(f"asked for torch {version}, the environment holds {build.version}")
    if commit and not build.git_version.startswith(commit.lower()):
        raise BuildSpecError(
            f"the build is labelled {commit} but torch {build.version} was built from {build.git_version[:12]}"
        )


def main(args):
    failed = 0
    for number, spec in enumerate(args.builds, 1):
        print(f"=== build {number}/{len(args.builds)}: {spec}", flush=True)
        start = time.perf_counter()
        workdir = tempfile.mkdtemp(prefix="torch-overhead-backfill-")
        try:
            pip_args, version, commit = parse(spec)
            print(f"    installing {' '.join(pip_args)} into a fresh environment", flush=True)
            python = install(pip_args, workdir)
            check_identity(probe(python), version, commit)
            cmd = main_command.command(args.project_root, args.device, python=python, machine=args.machine)
            status = subprocess.run(cmd).returncode
            if status != 0:
                raise BuildSpecError(f"the run exited {status} (see above)")
            print(f"=== build {number} recorded in {time.perf_counter() - start:.0f} s wall", flush=True)
        except (BuildSpecError, ProbeError) as err:
            failed += 1
            print(f"error: {spec}: {err}; skipped", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0
