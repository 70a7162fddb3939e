"""The build index: which PyTorch builds have results, keyed by their real commit.

asv keys every result by a commit hash and orders history by commit date, which it
normally reads from a git clone. A PyTorch clone is gigabytes and CI has no network,
so this project keeps a small JSON index instead (``builds.json`` beside ``results/``, committed
with the results): one entry per recorded build with the commit its wheel names
(``torch.version.git_version``), its version, its date and its channel.

The channel is the asv branch the build's commit lives on: ``nightly`` for nightly
wheels (``X.Y.Z.devYYYYMMDD``), ``release`` for release wheels, ``main`` for source
builds of a main-branch commit (``X.Y.ZaN+git<hash>``).
"""

import datetime
import json
import os
import re
import tempfile

INDEX_VERSION = 1
_HASH = re.compile(r"^[0-9a-f]{40}$")
_NIGHTLY = re.compile(r"\.dev(\d{8})")


class BuildIndexError(RuntimeError):
    """The index file is missing, unreadable or inconsistent; the message says which."""


def channel_of(version):
    if _NIGHTLY.search(version):
        return "nightly"
    if "+git" in version:
        return "main"
    return "release"


def date_of(version, now=None):
    """A nightly's date is in its version; any other build is dated when first recorded."""
    match = _NIGHTLY.search(version)
    if match:
        day = datetime.datetime.strptime(match.group(1), "%Y%m%d")
        return day.replace(tzinfo=datetime.timezone.utc).isoformat()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.replace(microsecond=0).isoformat()


def timestamp_ms(iso_date):
    """asv's dates are JavaScript timestamps (milliseconds since the epoch)."""
    return int(datetime.datetime.fromisoformat(iso_date).timestamp() * 1000)


def load(path):
    """Read the index; an absent file is an empty index, anything unreadable is an error."""
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise BuildIndexError(f"build index {path} is unreadable ({err}); restore it from git") from err
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        raise BuildIndexError(f"build index {path} is not a version-{INDEX_VERSION} index; restore it from git")
    builds = data.get("builds")
    if not isinstance(builds, list) or not all(_valid(b) for b in builds):
        raise BuildIndexError(f"build index {path} has a malformed entry; restore it from git")
    return builds


def _valid(build):
    try:
        return bool(_HASH.match(build["commit"])) and bool(build["version"]) and timestamp_ms(build["date"]) > 0
    except (KeyError, TypeError, ValueError):
        return False


def save(path, builds):
    builds = sorted(builds, key=lambda b: (timestamp_ms(b["date"]), b["version"]))
    write_json(path, {"version": INDEX_VERSION, "builds": builds})


def write_json(path, data):
    """Write atomically: a crash (or Ctrl-C) mid-write leaves the previous file in place."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def register(path, commit, version, date=None):
    """Add a build to the index (or return the entry already there for that commit).

    Refuses a commit already recorded under another version: one commit, one build.
    """
    if not _HASH.match(commit or ""):
        raise BuildIndexError(f"torch {version} names no commit ({commit!r}); a build without git_version cannot be recorded")
    builds = load(path)
    for build in builds:
        if build["commit"] == commit:
            if build["version"] != version:
                raise BuildIndexError(
                    f"commit {commit[:12]} is recorded as torch {build['version']}, not {version}; "
                    "check which torch is installed"
                )
            return build
    entry = {
        "commit": commit,
        "version": version,
        "date": date or date_of(version),
        "channel": channel_of(version),
    }
    save(path, builds + [entry])
    return entry
