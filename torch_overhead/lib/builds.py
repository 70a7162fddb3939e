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
import glob
import json
import os
import re
import shutil
import tempfile
import zipfile

from . import result_files

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


def wheel_date(path):
    """When a wheel was built: the newest time stamp among its entries (UTC, as the build
    machines stamp them). A release's wheel is built days before its upload at most, so it
    dates a release on the history axis better than the day it was first recorded."""
    with zipfile.ZipFile(path) as wheel:
        newest = max(info.date_time for info in wheel.infolist())
    return datetime.datetime(*newest, tzinfo=datetime.timezone.utc).isoformat()


def merge(project_root, shards, select=None, replace=False):
    """Merge the ``results/`` and ``builds.json`` of each shard project (a folder) into
    ``project_root``'s; returns what was done, one line per shard. ``select``: a predicate on
    asv variant names ``name(params)``; only the variants it accepts are taken from the shards
    (``result_files.select``), and with ``replace`` they replace recorded ones.

    Conflict-free by construction, and checked before anything is written: builds are keyed
    by commit (a commit indexed under two versions is refused, as ``register`` does; the same
    build under two dates keeps the earlier), result files by machine, commit and
    environment. One file in two places is merged variant by variant when each run measured
    other variants (``--bench``; ``result_files.merge``) and refused where both measured one:
    that build was recorded twice, and one record would be lost. ``results/benchmarks.json``
    must agree on every benchmark's version, or asv publish would drop one side's results.
    """
    index_path = os.path.join(project_root, "builds.json")
    merged = {b["commit"]: dict(b) for b in load(index_path)}
    copies, notes = {}, []  # target path -> the source to copy, or merged contents
    for shard in shards:
        shard_index = os.path.join(shard, "builds.json")
        if not os.path.isfile(shard_index):
            raise BuildIndexError(f"{shard} holds no builds.json: give the project folder a shard recorded into")
        new_builds = 0
        for build in load(shard_index):
            ours = merged.get(build["commit"])
            if ours is None:
                merged[build["commit"]] = dict(build)
                new_builds += 1
            elif ours["version"] != build["version"]:
                raise BuildIndexError(
                    f"{shard} records commit {build['commit'][:12]} as torch {build['version']}, the merge so far "
                    f"as torch {ours['version']}: one commit is one build; find which shard installed the wrong "
                    "torch and drop its results of that commit"
                )
            elif timestamp_ms(build["date"]) < timestamp_ms(ours["date"]):
                ours["date"] = build["date"]
        new_files = merged_variants = replaced_variants = 0
        for source in sorted(glob.glob(os.path.join(shard, "results", "**", "*.json"), recursive=True)):
            relative = os.path.relpath(source, shard)
            target = os.path.join(project_root, relative)
            if relative == os.path.join("results", "benchmarks.json"):
                _check_same_suite(copies.get(target, target), source)
                if not os.path.exists(target):
                    copies.setdefault(target, source)
                continue
            present = copies.get(target, target if os.path.exists(target) else None)
            results_file = os.path.basename(relative) != "machine.json"
            if select is not None and results_file:
                source = result_files.select(_json(source), select)
                if not source["results"]:
                    continue
            if present is None:
                copies[target] = source
                new_files += 1
            elif results_file and (isinstance(present, dict) or isinstance(source, dict)
                                   or not _same_bytes(present, source)):
                try:
                    contents, added, replaced = result_files.merge(_json(present), _json(source), replace)
                except result_files.ResultConflict as err:
                    where = ("the merge so far" if isinstance(present, dict)
                             else os.path.dirname(os.path.dirname(os.path.dirname(present))))  # above results/MACHINE/
                    raise BuildIndexError(
                        f"{relative} differs between {shard} and {where} ({err}): the same build was recorded twice "
                        "on that machine; keep one of the two files, or take the shard's by --bench REGEX --replace"
                    ) from None
                if added or replaced:
                    copies[target] = contents
                    merged_variants += added
                    replaced_variants += replaced
        notes.append(f"{shard}: {new_builds} new builds, {new_files} new result files"
                     + (f", {merged_variants} variants added to recorded files" if merged_variants else "")
                     + (f", {replaced_variants} recorded variants replaced" if replaced_variants else ""))
    for target, source in copies.items():
        if isinstance(source, dict):
            result_files.write(target, source)
        elif not (os.path.exists(target) and _same_bytes(target, source)):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target + ".tmp")
            os.replace(target + ".tmp", target)
    save(index_path, list(merged.values()))
    return notes


def _same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def _json(path_or_data):
    if isinstance(path_or_data, dict):
        return path_or_data
    try:
        with open(path_or_data, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as err:
        raise BuildIndexError(f"{path_or_data} is not valid JSON ({err}): restore it from version control "
                              "or record that build again") from None


def _check_same_suite(ours, theirs):
    if not os.path.exists(ours):
        return
    versions = []
    for path in (ours, theirs):
        with open(path, encoding="utf-8") as f:
            versions.append({name: b.get("version") for name, b in json.load(f).items() if isinstance(b, dict)})
    differ = sorted(n for n in set(versions[0]) & set(versions[1]) if versions[0][n] != versions[1][n])
    if differ:
        raise BuildIndexError(f"{theirs} was recorded with other benchmark versions ({', '.join(differ[:3])}): "
                              "record every shard with the same suite")
