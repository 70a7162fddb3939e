"""A stand-in for a PyTorch checkout, shared by the bisect and clone-history tests.

A small git repository whose build does, as far as this suite can see, what
``pip install -e .`` does for PyTorch: afterwards the interpreter's torch names the
checked-out commit (``torch.version.git_version``) and behaves as that commit's code.
The build (``build.py``, committed in the repository like PyTorch's setup.py) writes an
overlay folder, which the tests put on ``PYTHONPATH``, holding a ``sitecustomize.py``:
when torch is imported it sets ``git_version`` to the HEAD the build saw and runs the
repository's ``settings.py``. Those are real torch settings, so the commit that turns
on ``torch._inductor.config.nan_asserts`` (Inductor's wrapper then checks every output
for NaN on every call, in Python), ``profiler_mark_wrapper_call`` (a profiler range around
every call) and sets a default device (a TorchFunctionMode that every torch call made in
Python, those NaN checks included, then passes through) adds real per-call overhead to the
compiled add1 (docs/testing.md gives the figures). A commit whose ``settings.py`` does not
compile fails the build, as a C++ error fails a real one.

``main`` (first parent, oldest first): GOOD, then 8 commits; the 4th breaks the build,
the 5th fixes it, the 6th turns on those settings; the 8th is BAD. ``nightly`` holds
one commit per "nightly" (of main's 2nd and 7th commits), each with that commit's tree
and a subject naming it, as PyTorch's nightly branch does.
"""

import glob
import json
import os
import shlex
import subprocess
import sys

from conftest import ROOT, make_project

OVERHEAD_SUBJECT = "Check outputs for NaN, profile calls, set a default device"
OVERHEAD_SETTINGS = ("torch._inductor.config.nan_asserts = True\ntorch._inductor.config.profiler_mark_wrapper_call = True\n"
                     "torch.set_default_device('cpu')\n")

BUILD_PY = r'''"""Stand-in build: check settings.py compiles, then write the overlay torch imports through."""
import os
import subprocess
import sys

overlay = sys.argv[1]
TEMPLATE = TEMPLATE_TEXT
head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
with open(os.path.join(overlay, "builds.log"), "a") as log:
    log.write(head + "\n")
with open("settings.py") as f:
    settings = f.read()
compile(settings, "settings.py", "exec")  # a syntax error fails the build
with open(os.path.join(overlay, "sitecustomize.py"), "w") as f:
    f.write(TEMPLATE.format(commit=head, settings=settings))
'''

# What the overlay holds: an import hook that finishes torch's import as the build would
# have left it (its commit, its settings). Lazy, so processes that never import torch
# (asv itself) pay nothing.
TEMPLATE = r'''
import importlib.abc
import importlib.util
import sys

COMMIT = {commit!r}
SETTINGS = {settings!r}


class _Build(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.version.git_version = COMMIT
            exec(compile(SETTINGS, "settings.py", "exec"), {{"torch": module}})

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Build())
'''

BASE_SETTINGS = "import torch._dynamo.config\nimport torch._inductor.config\n"


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def _commit(repo, message, files):
    for name, text in files.items():
        with open(os.path.join(repo, name), "w") as f:
            f.write(text)
    git(repo, "add", *files)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_standin(repo, overlay):
    """Create the repository at ``repo`` (overlay written to ``overlay``); returns its commits by role."""
    os.makedirs(repo)
    os.makedirs(overlay, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "standin@example.com")
    git(repo, "config", "user.name", "stand-in")
    settings = BASE_SETTINGS
    good = _commit(repo, "Initial stand-in", {
        "build.py": BUILD_PY.replace("TEMPLATE_TEXT", repr(TEMPLATE)), "settings.py": settings, "README": "stand-in\n"})
    settings += "torch._dynamo.config.recompile_limit = 8\n"  # the default: no effect
    history = [
        ("Document the stand-in", {"README": "stand-in for a PyTorch checkout\n"}),
        ("Keep the default recompile limit explicit", {"settings.py": settings}),
        ("Notes", {"NOTES": "nothing to see\n"}),
        ("Break the build", {"settings.py": settings + "torch._dynamo.config.verbose = (\n"}),
        ("Fix the build", {"settings.py": settings}),
        (OVERHEAD_SUBJECT, {"settings.py": settings + OVERHEAD_SETTINGS}),
        ("More notes", {"NOTES": "still nothing\n"}),
        ("Last notes", {"NOTES": "done\n"}),
    ]
    main = [_commit(repo, message, files) for message, files in history]
    nightly = None
    nightlies = []
    for day, commit in ((1, main[1]), (2, main[6])):
        parents = ["-p", nightly] if nightly else []
        tree = git(repo, "rev-parse", commit + "^{tree}")
        nightly = git(repo, "commit-tree", tree, *parents, "-m", f"2026-01-0{day} nightly release ({commit})")
        nightlies.append(nightly)
    git(repo, "branch", "nightly", nightly)
    return {"good": good, "main": main, "bad": main[-1], "broken": main[3], "overhead": main[5],
            "nightly": nightlies}


def build_command(overlay):
    """The stand-in's build, as a bisect ``--build-command`` (run in the checkout)."""
    return f"{{python}} build.py {shlex.quote(str(overlay))}"


def build(repo, commit, overlay):
    """Check out and build one commit, as a developer would before recording it."""
    git(repo, "checkout", "-q", "--detach", commit)
    subprocess.run([sys.executable, "build.py", str(overlay)], cwd=repo, check=True)


def builds_log(overlay):
    """The commits built so far, in order (each build attempt appends its HEAD)."""
    path = os.path.join(overlay, "builds.log")
    return open(path).read().split() if os.path.exists(path) else []


# One process per commit, pinned to CPU 0, away from the default (last) CPU that any other run
# of the suite uses; samples of 50 calls for 2 s (at least 20), so that a slow spell of the
# machine shorter than a second cannot move a commit's median (docs/testing.md).
FAST = ["--attribute", "repeat=(20,2000,2.0)", "--attribute", "rounds=1", "--cpu-affinity", "0"]
# About as far (geometrically) from what the overhead commit reads as from what unchanged
# commits read, on the 2-core CPU machine (docs/testing.md): by medians, and by instruction counts.
THRESHOLD = "2.3"
COUNT_THRESHOLD = "1.7"
# Counts do not drift with the machine load, so their callgrind processes are left unpinned.
BY_COUNTS = ["--metric", "instructions", "--threshold", COUNT_THRESHOLD, "--cpu-affinity", "none"]


class StandIn:
    def __init__(self, tmp_path):
        self.project = make_project(tmp_path / "project")
        self.config = os.path.join(self.project, "asv.conf.clone.json")
        with open(os.path.join(ROOT, "asv.conf.clone.json")) as src, open(self.config, "w") as dst:
            dst.write(src.read())
        self.repo = os.path.join(self.project, "pytorch")  # the config's repo
        self.overlay = str(tmp_path / "overlay")
        self.commits = make_standin(self.repo, self.overlay)
        good, bad = self.commits["good"], self.commits["bad"]
        self.state = os.path.join(self.project, ".asv", f"bisect-{good[:12]}-{bad[:12]}.json")

    def env(self):
        path = os.pathsep.join(p for p in (self.overlay, os.environ.get("PYTHONPATH")) if p)
        return dict(os.environ, HOME=self.project, PYTHONPATH=path)

    def command(self, good, bad, *args, build=None, metric="time"):
        return [sys.executable, "-m", "torch_overhead", "bisect", good, bad, "--project-root", self.project,
                "--machine", "ci-cpu", "--device", "cpu", "--build-command", build or build_command(self.overlay),
                *(["--threshold", THRESHOLD, *FAST] if metric == "time" else BY_COUNTS), *args]

    def bisect(self, *args, good=None, bad=None, build=None, metric="time"):
        good, bad = good or self.commits["good"], bad or self.commits["bad"]
        return subprocess.run(self.command(good, bad, *args, build=build, metric=metric), capture_output=True,
                              text=True, env=self.env(), timeout=1800)

    def recorded(self):
        """Commits with a results file, and each file's modification time."""
        paths = [p for p in glob.glob(os.path.join(self.project, "results", "ci-cpu", "*.json"))
                 if not p.endswith("machine.json")]
        return {json.load(open(p))["commit_hash"]: os.path.getmtime(p) for p in paths}
