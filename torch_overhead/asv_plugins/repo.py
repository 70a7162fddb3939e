"""asv repository types: the build index instead of a PyTorch clone, and a clone.

Enabled by ``"dvcs": "torch-builds"`` and ``"plugins": [".torch_overhead.asv_plugins.repo"]`` in
asv.conf.json, with ``"repo"`` naming the index file. asv then records, publishes,
compares and shows results keyed by real PyTorch commit hashes that exist in no local
git repository. Names accepted wherever asv takes a commit: a full or abbreviated hash,
a torch version (``2.13.0+cpu``), the tag form ``torch-2.13.0+cpu``, or a channel name
(``nightly``, ``release``, ``main``) for its newest build.

It cannot check out or build anything: benchmark installed builds with the
``installed-torch`` environment (``torch_overhead.asv_plugins.environment``).

``"dvcs": "torch-git"`` (asv.conf.clone.json) is asv's own git repository type with one
change for the main command's `asv run`, the same as the index's: see RUN_COMMIT_ENV_VAR.
"""

import os
import re

from asv import util
from asv.plugins.git import Git
from asv.repo import NoSuchNameError, Repo

from ..lib import builds as build_index

CHANNELS = ("main", "nightly", "release")
# Set by the main command for its `asv run` only: the build it benchmarks. asv, given an
# installed environment and --set-commit-hash, still walks the branch tips and names the
# newest build in its progress line ("For torch commit ..."), whatever build it measures
# (results are filed under the set hash). With this set, every channel's (or, in a clone,
# every branch's) tip is that build, so the line names the build being measured.
RUN_COMMIT_ENV_VAR = "TORCH_OVERHEAD_RUN_COMMIT"


class TorchBuildIndex(Repo):
    dvcs = "torch-builds"
    _default_branch = "release"

    def __init__(self, url, mirror_path):
        self._path = os.path.abspath(url)
        self._builds = None

    @classmethod
    def url_match(cls, url):
        return False  # chosen only by an explicit "dvcs": "torch-builds"

    # -- index access ----------------------------------------------------------
    def _all(self):
        if self._builds is None:
            try:
                self._builds = build_index.load(self._path)
            except build_index.BuildIndexError as err:
                raise util.UserError(str(err)) from err
        return self._builds

    def _newest_first(self, builds):
        return [b["commit"] for b in sorted(builds, key=lambda b: build_index.timestamp_ms(b["date"]), reverse=True)]

    def _find(self, commit):
        for build in self._all():
            if build["commit"] == commit:
                return build
        raise NoSuchNameError(commit)

    def pull(self):
        self._builds = None  # re-read: the runner may have just registered a build

    # -- names and hashes ------------------------------------------------------
    def get_hash_from_name(self, name):
        builds = self._all()
        if name is None:
            name = self.get_branch_name()
        if name in CHANNELS:
            if os.environ.get(RUN_COMMIT_ENV_VAR):
                return self._find(os.environ[RUN_COMMIT_ENV_VAR])["commit"]
            commits = self.get_branch_commits(name) or self._newest_first(builds)
            if not commits:
                raise NoSuchNameError(f"{name}: no build recorded yet in {self._path}")
            return commits[0]
        version = name[len("torch-"):] if name.startswith("torch-") else name
        by_version = [b["commit"] for b in builds if b["version"] == version]
        if by_version:
            return by_version[0]
        # "2.4.1" for the recorded "2.4.1+cu121": engineers name releases without the wheel's suffix
        public = [b for b in builds if b["version"].split("+")[0] == version]
        if len(public) > 1:
            raise util.UserError(f"{name} names {len(public)} recorded builds "
                                 f"({', '.join(b['version'] for b in public)}); name one of them")
        if public:
            return public[0]["commit"]
        by_hash = {b["commit"] for b in builds if len(name) >= 7 and b["commit"].startswith(name.lower())}
        if len(by_hash) == 1:
            return by_hash.pop()
        raise NoSuchNameError(name)

    def get_hash_from_parent(self, name):
        commit = self.get_hash_from_name(name)
        channel = self._find(commit)["channel"]
        older = self.get_branch_commits(channel)
        position = older.index(commit)
        if position + 1 >= len(older):
            raise NoSuchNameError(f"{name} is the oldest recorded {channel} build")
        return older[position + 1]

    def get_name_from_hash(self, commit):
        try:
            return "torch-" + self._find(commit)["version"]
        except NoSuchNameError:
            return None

    def get_tags(self):
        return {"torch-" + b["version"]: b["commit"] for b in self._all()}

    # -- dates, order, ranges --------------------------------------------------
    def get_date(self, hash):
        return build_index.timestamp_ms(self._find(hash)["date"])

    def get_date_from_name(self, name):
        return self.get_date(self.get_hash_from_name(name))

    def get_branch_commits(self, branch):
        branch = self.get_branch_name(branch)
        return self._newest_first([b for b in self._all() if b.get("channel") == branch])

    def get_revisions(self, commits):
        """Position on the history axis: builds in date order (publish needs this)."""
        ordered = reversed(self._newest_first(self._all()))
        return {c: i for i, c in enumerate(ordered) if c in commits}

    def get_range_spec(self, commit_a, commit_b):
        return f"{commit_a}..{commit_b}"

    def get_new_range_spec(self, latest_result, branch=None):
        return f"{latest_result}..{self.get_branch_name(branch)}"

    def get_hashes_from_range(self, range_spec):
        """``A..B`` is every build after A up to B, newest first; a single name is that build."""
        if ".." not in range_spec:
            return [self.get_hash_from_name(range_spec)] if range_spec else self._newest_first(self._all())
        start, end = range_spec.split("..", 1)
        newest_first = self._newest_first(self._all())
        end_at = newest_first.index(self.get_hash_from_name(end or None))
        stop_at = newest_first.index(self.get_hash_from_name(start)) if start else len(newest_first)
        return newest_first[end_at:stop_at]

    def checkout(self, path, commit_hash):
        raise util.UserError(
            "the torch-builds repository holds no source to check out; benchmark an installed "
            "build with `python -m torch_overhead run`, or point asv.conf.json at a PyTorch clone"
        )


class TorchClone(Git):
    """A PyTorch git clone, as asv's ``git``; during the main command's `asv run` every
    branch name resolves to the build being measured, so that asv's progress line names
    it (without this it named the nightly tip while measuring a main-branch build)."""

    dvcs = "torch-git"

    @classmethod
    def url_match(cls, url):
        return False  # only where a config asks for it by name; plain git stays asv's

    def get_hash_from_name(self, name):
        measured = os.environ.get(RUN_COMMIT_ENV_VAR)
        if measured and not re.fullmatch(r"[0-9a-f]{7,40}", name or ""):
            return measured
        return super().get_hash_from_name(name)
