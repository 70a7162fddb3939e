"""The main command (``run``) as the tools that drive it see it: its argv, and a scratch project.

``backfill``, ``bisect``, ``figures`` and ``gate-sensitivity`` record through the main
command in a subprocess, exactly as a user would, rather than calling into it.
"""

import argparse
import os
import shutil
import sys

from asv.commands.common_args import add_bench


def command(project_root, device, **options):
    """``python -m torch_overhead run`` as an argv: ``options`` are its flags by name
    (``cpu_affinity=`` for ``--cpu-affinity``); a flag left None or False is left out, True
    is given bare, and a list is given once per item."""
    argv = [sys.executable, "-m", "torch_overhead", "run", "--project-root", str(project_root), "--device", device]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        values = value if isinstance(value, (list, tuple)) else [value]
        argv += [flag] if value is True else [f"{flag}={v}" for v in values if v not in (None, False)]
    return argv


def copy_project(source, path, benchmarks_from=None):
    """A scratch asv project in ``path``: ``source``'s asv.conf.json and benchmarks (or those in
    ``benchmarks_from``); its results, build index and html then land there, not in ``source``."""
    os.makedirs(path, exist_ok=True)
    shutil.copy(os.path.join(source, "asv.conf.json"), path)
    shutil.copytree(benchmarks_from or os.path.join(source, "benchmarks"), os.path.join(path, "benchmarks"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return str(path)


def asv_attributes(attributes, cpu_affinity):
    """``--attribute`` items and ``--cpu-affinity`` parsed exactly as ``asv run`` parses them:
    ``{"cpu_affinity": [6, 7], "repeat": 5, ...}``. Raises ValueError with asv's message."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    add_bench(parser)
    argv = [a for item in attributes or [] for a in ("--attribute", item)]
    if cpu_affinity != "none":
        argv += ["--cpu-affinity", cpu_affinity]
    try:
        return parser.parse_args(argv).attribute or {}
    except argparse.ArgumentError as err:
        raise ValueError(str(err))
