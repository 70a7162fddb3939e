"""What protects recorded files while ``run`` drives asv: one run per checkout, and no half-written file.

asv 0.6.6 reads a results file when a run starts and writes it back when the run ends,
with no lock, and writes every JSON file in place (``asv.util.write_json`` opens it with
"w", no temporary file). Two runs at once in one checkout therefore keep only the results
of the one that ends last, and a Ctrl-C that lands during a write leaves a truncated file.
asv offers neither a lock nor atomic writes, so the runner adds both from outside.
"""

import errno
import fcntl
import hashlib
import json
import os
import shutil


class LockedError(RuntimeError):
    """Another run holds the checkout's lock."""


def lock(project_root):
    """Take the checkout's run lock, or raise LockedError at once; returns the open lock file,
    which holds the lock until it is closed or the process ends (``flock``: a killed run never
    leaves a stale lock). A second run is refused rather than queued: runs side by side would
    also perturb each other's timings, and a queued run looks hung for many minutes."""
    path = os.path.join(project_root, ".asv", "run.lock")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        f.close()
        if err.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise LockedError(f"another run is recording in this checkout (it holds {path}); "
                              "wait for it to finish, then run again") from err
        raise
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def fingerprint(paths):
    """``{file: sha256}`` of every file under ``paths`` (files or folders; absent ones are left out):
    compared before and after a step, it says exactly what the step changed."""
    found = {}
    for top in paths:
        files = [top] if os.path.isfile(top) else [
            os.path.join(d, n) for d, _, names in os.walk(top) for n in names]
        for path in files:
            with open(path, "rb") as f:
                found[path] = hashlib.sha256(f.read()).hexdigest()
    return found


class KeepValid:
    """Copies of JSON files asv may rewrite in place; ``restore_broken()`` puts back any that
    no longer parse (a write cut short), and says which."""

    def __init__(self, paths, backup_dir):
        self.copies = {}
        shutil.rmtree(backup_dir, ignore_errors=True)  # an earlier run's copies (the lock is held)
        os.makedirs(backup_dir)
        for number, path in enumerate(paths):
            if os.path.isfile(path):
                copy = os.path.join(backup_dir, f"{number}-{os.path.basename(path)}")
                shutil.copy2(path, copy)
                self.copies[path] = copy

    def restore_broken(self):
        restored = []
        for path, copy in self.copies.items():
            try:
                with open(path, encoding="utf-8") as f:
                    json.load(f)
            except (OSError, ValueError):
                os.replace(copy, path)
                restored.append(path)
        return restored
