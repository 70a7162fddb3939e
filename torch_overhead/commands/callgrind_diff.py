"""Where the instructions went: per-function callgrind costs of one variant, in two builds, diffed.

``python -m torch_overhead callgrind-diff OLD_PYTHON NEW_PYTHON [--variant requires_grad+backward] [--top 25]``
``python -m torch_overhead callgrind-diff PYTHON PYTHON --layer eager --new-layer inductor``: two layers of one build
``python -m torch_overhead callgrind-diff --device cuda PYTHON PYTHON``: one build against itself, two processes on
the GPU: what moves between processes

Counted on ``--device`` (default: CUDA where the build sees a GPU, as ``run``).

Each interpreter's torch counts ``add1`` of the variant at its layer (default: the headline,
Inductor) exactly as the instruction-count benchmarks do (``benchmarks/callgrind.py``: compiled and warmed up
uninstrumented, collection on the calling thread only around each counted call, one dump
per block), and the block with the fewest instructions is kept. ``callgrind_annotate``
(valgrind's own reader) lists its functions, exclusive and inclusive; the functions are
matched by file, function and library name (recursion levels ``'2`` folded together, paths
of the two environments left out) and the largest changes per call are printed.

Addresses without a symbol (``???:0x...``) differ between builds by construction: they show
as one function gone and another new, which the listing says.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

from ..lib.benchmark_env import benchmark_env
from ..lib.probe import ProbeError, probe
from ..lib.suite import settings

FLAGS = ("requires_grad", "inference_mode", "backward", "dynamic")
# Run in the benchmarked interpreter (it has torch; the project root is its working folder).
_COUNT = """
import json, sys
from benchmarks import callgrind, instruction_count as ic
out, job = sys.argv[1], tuple(json.loads(sys.argv[2]))
try:
    valgrind = callgrind.find_valgrind()
    shim = callgrind.build_shim(valgrind, out)
    with ic.caches_held():
        ic.warm_inductor_cache([job])
        env = ic.own_cache_env(ic.slot(job) + "0", job)  # the cache copy of the counts' first layout
        counts = callgrind.count_one(valgrind, shim, "benchmarks.instruction_count:layer_calls", job,
                                     env, out, ic.BLOCKS, ic.CALLS)
except (callgrind.Unavailable, callgrind.Crashed) as err:
    print(json.dumps({"error": str(err)}))
else:
    print(json.dumps(dict(counts, calls=ic.CALLS)))
"""
_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.+?)(?:\s+\[(.+)\])?\s*$")


class DiffError(RuntimeError):
    pass


def parse_variant(text):
    """``requires_grad+backward`` (the flags that are on; ``base``: none) -> a seed variant tuple."""
    on = set() if text == "base" else set(text.split("+"))
    unknown = on - set(FLAGS)
    variant = tuple(flag in on for flag in FLAGS)
    if unknown or variant not in [tuple(v) for v in settings.VALID_VARIANTS]:
        raise DiffError(f"--variant {text}: name the flags that are on, joined by '+', from {', '.join(FLAGS)} "
                        "(or 'base'), for a variant the seed builds, e.g. requires_grad+backward")
    return variant


def find_annotate():
    """valgrind's profile reader: on PATH, else beside the valgrind the counts use (a relocated
    kit may lack it: checked before minutes of counting)."""
    try:
        valgrind = settings.chosen_valgrind()
    except ValueError as err:
        raise DiffError(str(err))
    found = shutil.which("callgrind_annotate") or (
        valgrind and shutil.which("callgrind_annotate", path=os.path.dirname(os.path.realpath(valgrind))))
    if not found:
        raise DiffError("callgrind_annotate (valgrind's profile reader, a Perl script) is not on PATH nor beside "
                        "valgrind: install valgrind, or put its callgrind_annotate on PATH")
    return found


def functions(dump, inclusive, annotate="callgrind_annotate"):
    """``{"file:function [library]": instructions}`` from ``callgrind_annotate`` of one dump."""
    listing = subprocess.run([annotate, f"--inclusive={'yes' if inclusive else 'no'}",
                              "--threshold=100", dump], capture_output=True, text=True, check=True).stdout
    costs = defaultdict(int)
    for line in listing.split("file:function", 1)[-1].splitlines():
        match = _LINE.match(line)
        if match:
            name = re.sub(r"'\d+$", "", match.group(2))  # recursion depth: one function
            path, _, function = name.rpartition(":")
            # the last folders of the source path: the build machines' own prefixes differ
            name = f"{'/'.join(path.split('/')[-3:])}:{function}" if path.startswith("/") else name
            library = os.path.basename(match.group(3)) if match.group(3) else ""
            costs[f"{name} [{library}]" if library else name] += int(match.group(1).replace(",", ""))
    return dict(costs)


def diff(old, new, calls, top):
    """Lines: the ``top`` functions by absolute change, per call."""
    rows = sorted(((new.get(k, 0) - old.get(k, 0), k) for k in set(old) | set(new)), key=lambda r: (-abs(r[0]), r[1]))
    lines = [f"{'change':>10} {'old':>10} {'new':>10}  file:function [library] (instructions per call)"]
    for change, key in rows[:top]:
        note = " (new)" if key not in old else " (gone)" if key not in new else ""
        lines.append(f"{change / calls:>+10,.0f} {old.get(key, 0) / calls:>10,.0f} {new.get(key, 0) / calls:>10,.0f}"
                     f"  {key}{note}")
    return lines


def count(python, layer, variant, wanted_device, project_root, workdir):
    """Count the variant at ``layer`` in ``python``'s torch on ``wanted_device`` (auto, cuda, cpu);
    returns (build, counts, path of the fewest-instructions dump)."""
    build = probe(python)
    device = build.resolve_device(wanted_device)
    env = benchmark_env(device, build.git_version, project_root, [])
    print(f"counting {settings.flags_name(variant)} at layer {layer} on {device} in torch {build.version} "
          f"@ {build.git_version[:12]} (a compile, then callgrind: minutes)", flush=True)
    result = subprocess.run([python, "-c", _COUNT, workdir, json.dumps([layer, *variant])], cwd=project_root, env=env,
                            capture_output=True, text=True)
    try:
        counts = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DiffError(f"counting in {python} failed: {tail}")
    if "error" in counts:
        raise DiffError(f"counting in {python} failed: {counts['error']}")
    dumps = [os.path.join(workdir, name) for name in os.listdir(workdir) if re.search(r"\.out\.\d+-01$", name)]
    totals = {}
    for dump in dumps:
        with open(dump) as f:
            totals[dump] = int(re.search(r"^totals:\s+(\d+)", f.read(), re.M).group(1))
    return build, counts, min(totals, key=totals.get)


def main(args):
    try:
        variant = parse_variant(args.variant)
        annotate = find_annotate()
        layers = (args.layer, args.new_layer or args.layer)
        profiles = []
        for python, layer in zip((args.old, args.new), layers):
            with tempfile.TemporaryDirectory(prefix="callgrind-diff-") as workdir:
                build, counts, dump = count(python, layer, variant, args.device, args.project_root, workdir)
                profiles.append((build, counts, functions(dump, False, annotate), functions(dump, True, annotate)))
    except (DiffError, ProbeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    (old, old_counts, old_ex, old_in), (new, new_counts, new_ex, new_in) = profiles
    calls = old_counts["calls"]
    print(f"\n{args.variant}: torch {old.version} {layers[0]} {old_counts['calling_thread']:,.0f} -> torch {new.version} "
          f"{layers[1]} {new_counts['calling_thread']:,.0f} instructions per call (calling thread, fewest of the blocks)")
    for what, a, b in (("exclusive", old_ex, new_ex), ("inclusive", old_in, new_in)):
        print(f"\n## {what}: the {args.top} largest changes")
        print("\n".join(diff(a, b, calls, args.top)))
    return 0
