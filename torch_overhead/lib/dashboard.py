"""Publish the dashboard so that a failure or an interruption leaves the previous one whole.

``asv publish`` first deletes its html folder, then writes the new one file by file: a
Ctrl-C, or a publish that fails part way (a corrupt builds.json), leaves a dashboard with
files missing. So asv publishes into a temporary folder beside the real one (same file
system: a rename, not a copy), and only a complete dashboard is swapped in.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from asv.config import Config

from .offline_html import make_self_contained

STAGING_PREFIX = ".publishing-"


def publish(project_root, config, env):
    """``asv publish`` with ``config`` (a file in ``project_root``) into a temporary folder, swapped
    in for the config's html_dir once complete; returns asv's exit status (the dashboard is left
    as it was unless it is 0)."""
    html = os.path.join(project_root, Config.load(os.path.join(project_root, config)).html_dir)
    parent = os.path.dirname(os.path.abspath(html))
    os.makedirs(parent, exist_ok=True)
    for leftover in glob.glob(os.path.join(parent, STAGING_PREFIX + "*")):  # from a killed publish
        shutil.rmtree(leftover, ignore_errors=True)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent)
    try:
        status = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", config, "--html-dir", staging],
                                cwd=project_root, env=env).returncode
        if status == 0:
            make_self_contained(staging)  # asv's page loads its libraries from CDNs: serve them locally
            _swap_in(staging, html)
        return status
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(new, html):
    """Replace the folder ``html`` by ``new``: two renames, with Ctrl-C held back between them
    (Linux has no atomic exchange of two folders in Python's os module)."""
    old = new + ".old"
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        if os.path.exists(html):
            os.rename(html, old)
        try:
            os.rename(new, html)
        except OSError:
            if os.path.exists(old):
                os.rename(old, html)
            raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    shutil.rmtree(old, ignore_errors=True)
