"""How far compare's verdicts hold on this machine: false alarms, sensitivity, cost, stability.

``python -m torch_overhead compare-check --device cuda --jobs 5 --cpu-affinity 11-15
[--repeats 5] [--percent 5] [--budget-seconds 300] [--neighbours N]``

In throwaway copies of the project (nothing is recorded in this one), with compare's own command:

1. ``--repeats`` A/A comparisons of the headline's variants (one build on both sides): a
   "slower" or "faster" is a false alarm; the ratios of the first three give the stability;
2. per level of ``--percent`` (5, or a list such as 2,3,5, which also gives the smallest change
   detected), one comparison whose side B spins that percent of each variant's own time per
   call on every call (``inject/``: calibrated in each process; in the backward of the backward
   variants, whose timed work it is), against side A through the same wrapper spinning nothing:
   "slower" is a detection; the sensitivity target is judged at the largest level. A variant
   compare counts instead gets that percent of its first A/A count in loop iterations, each as
   many instructions as callgrind counts for one here; the variants so counted share one number
   of iterations, and each one's share is printed;
3. with ``--neighbours N``, N unpinned busy processes run throughout: a noisy tenant on demand.

Beside each comparison: its wall time, and the machine's steal time and load average over it;
beside each A/A, its whole lean (``lib.paired.lean``), and over three or more A/A the part of their
leans that their imports leave unexplained: not a target, but what keeps an A/A "unknown" where its
rounds narrow around a ratio off 1.
With ``--keep DIR``, the same command run again reads the comparisons DIR holds finished and runs
only the rest: on a machine lent in calls of a few minutes, five A/A comparisons take several calls.
Exit status 0 when every target is met, else 1. The false alarms are judged over at least 5 A/A
comparisons and the stability over 3, as their targets ask: over fewer, each says so instead of
"met".
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from ..commands.compare import SHARED_CPU_BACKWARD
from ..lib import main_command
from ..lib.paired import between_line, lean, lean_line, read_report
from ..lib.suite import settings
from .gate_sensitivity import INJECT_DIR, INJECT_ITERATIONS_ENV_VAR, loop_instructions, minimum_detectable

MACHINE = "compare-check"
# The targets of the paired comparison's issue (docs/paired-comparison.md).
FALSE_ALARMS_AT_MOST = 0.05
DETECTED_AT_LEAST = 0.9
STABLE_WITHIN = 0.03
DECIDED_WITHIN_SECONDS = 300  # a verdict on every variant within 5 minutes
FALSE_ALARM_REPEATS = 5  # A/A comparisons the false-alarm figure is judged on, at least
STABILITY_REPEATS = 3  # and the stability figure, exactly: the first three


def _steal_and_total():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7], sum(fields)


def _run(args, workdir, tag, bench, what, inject=None, iterations=0):
    """One compare in its own project copy, to its end: ``(report rows, seconds, a line on the
    machine meanwhile, the instruction counts {variant: (side A's, side B's)}, its whole lean or
    None)``. ``inject``: the fraction side B spins (side A: the same wrapper, spinning 0), or None
    (A/A); ``iterations``, side B's spin in a counting process. ``args.keep``: a folder to copy its
    report, output and state (its samples) into, or None; a comparison it holds from an earlier run
    of the same command is read from there, not run again."""
    project = os.path.join(workdir, tag)
    report, log = os.path.join(project, "report.md"), os.path.join(project, "compare.log")
    cmd = [sys.executable, "-m", "torch_overhead", "compare", "--project-root", project, "--device", args.device,
           "--python", args.python, "--machine", MACHINE, "--pairing", "simultaneous",
           "--cpu-affinity", args.cpu_affinity, "--jobs", str(args.jobs), "--budget-seconds", str(args.budget_seconds),
           "--band", str(args.band), "--report", report, *[a for b in bench for a in ("--bench", b)],
           *(["--max-rounds", str(args.max_rounds)] if args.max_rounds else []),
           *[a for item in args.attribute or [] for a in ("--attribute", item)]]
    env = dict(os.environ, HOME=project)
    if inject is not None:
        for side, fraction, spins in (("a", 0, 0), ("b", inject, iterations)):
            cmd += [f"--env-{side}", f"{settings.INJECT_FRACTION_ENV_VAR}={fraction:g}",
                    f"--env-{side}", f"{INJECT_ITERATIONS_ENV_VAR}={spins}"]
        env["PYTHONPATH"] = os.pathsep.join(p for p in (INJECT_DIR, os.environ.get("PYTHONPATH")) if p)
    command = [a.replace(project, "PROJECT") for a in cmd]  # the same in every run of compare-check
    kept = _kept(args.keep, tag, command)
    if kept:
        return kept
    main_command.copy_project(args.project_root, project)
    steal0, total0 = _steal_and_total()
    began = time.perf_counter()
    with open(log, "w") as out:
        status = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - began
    steal1, total1 = _steal_and_total()
    if args.keep:
        for path in [report, log, *glob.glob(os.path.join(project, ".asv", "compare-*.json"))]:
            if os.path.exists(path):
                shutil.copy(path, os.path.join(args.keep, f"{tag}-{os.path.basename(path)}"))
    if status not in (0, 1) or not os.path.exists(report):  # 1: some variant slower
        with open(log) as f:
            raise SystemExit(f"error: {what}: compare exited {status}:\n{f.read()[-3000:]}")
    state = (f"{seconds:.0f} s; steal {100 * (steal1 - steal0) / max(total1 - total0, 1):.1f}%, "
             f"load {os.getloadavg()[0]:.1f}")
    counts, whole = {}, None
    for path in glob.glob(os.path.join(project, ".asv", "compare-*.json")):
        with open(path) as f:
            saved = json.load(f)
        whole = lean(saved)
        for name, got in saved.get("counts", {}).items():
            if got.get("A", {}).get("value") and got.get("B", {}).get("value"):
                counts[name] = got["A"]["value"], got["B"]["value"]
    if args.keep:  # written last, whole or not at all: its presence says the comparison finished
        done = os.path.join(args.keep, f"{tag}-done.json")
        with open(done + ".part", "w") as f:
            json.dump({"command": command, "seconds": seconds, "state": state, "counts": counts}, f, indent=1)
        os.replace(done + ".part", done)
    return read_report(report), seconds, state, counts, whole


def _kept_lean(keep, tag):
    """The whole lean (``lib.paired.lean``) of a kept comparison, from its state file, or None."""
    for path in glob.glob(os.path.join(keep, f"{tag}-compare-*.json")):
        with open(path) as f:
            return lean(json.load(f))
    return None


def _kept(keep, tag, command):
    """``_run``'s answer for a comparison that ``keep`` holds finished from an earlier run of this
    command (so a run cut off by a machine's time limit resumes at the comparison it was in), or None."""
    path = os.path.join(keep, f"{tag}-done.json") if keep else None
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        kept = json.load(f)
    if kept["command"] != command:
        raise SystemExit(f"error: {keep} holds comparisons run with other settings ({tag}); "
                         "give another --keep folder, or the same settings")
    return (read_report(os.path.join(keep, f"{tag}-report.md")), kept["seconds"], kept["state"] + ", kept",
            {name: tuple(pair) for name, pair in kept["counts"].items()},
            _kept_lean(keep, tag))


def _cell(row):
    """One comparison of one variant in the table: its B/A and a mark for the verdict."""
    if row is None or row[1] is None:
        return "n/a" if row is None else row[2][:9]
    return f"{row[1]:.3f}" + {"same": "=", "slower": "+", "faster": "-"}.get(row[2], "?")


def _neighbours(count):
    """``count`` unpinned processes that keep a CPU busy each until killed. They ignore Ctrl-C, which
    reaches the whole process group, so that it stops the comparisons without a traceback from each;
    ``main`` kills them."""
    spin = "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def main(args):
    try:
        main_command.asv_attributes(args.attribute, args.cpu_affinity)  # bad input fails here, not in compare
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        args.percent = sorted({float(level) for level in args.percent.split(",")})
    except ValueError:
        args.percent = []
    if args.repeats < 1 or not args.percent or not all(0 < level < 100 for level in args.percent):
        print("error: give --repeats 1 or more and --percent between 0 and 100, or a comma list of such "
              "(5 is a 5% change)", file=sys.stderr)
        return 2
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    bench = args.bench or ["^" + re.escape(settings.HEADLINE) + r"\("]
    noisy = _neighbours(args.neighbours)
    try:
        with tempfile.TemporaryDirectory(prefix="compare-check-") as workdir:
            return _check(args, workdir, bench)
    finally:
        for proc in noisy:
            proc.kill()


def _check(args, workdir, bench):
    print(f"{args.neighbours} busy neighbours; lanes: --jobs {args.jobs} --cpu-affinity {args.cpu_affinity}; "
          f"band 1 +- {args.band}; budget {args.budget_seconds:.0f} s per comparison", flush=True)
    aa, counts_a, leans = [], {}, []
    for i in range(args.repeats):
        rows, seconds, state, counts, whole = _run(args, workdir, f"aa{i}", bench, f"A/A {i + 1}")
        if whole:
            leans.append(whole)
            state += f"; lean {lean_line(whole)}"
        if i == 0:  # the injection is sized from the first A/A comparison's side A
            counts_a = {name: a for name, (a, _) in counts.items()}
        aa.append((rows, seconds))
        verdicts = [v for _, _, v in rows.values()]
        print(f"A/A {i + 1}: {state}; " + ", ".join(f"{verdicts.count(v)} {v}" for v in sorted(set(verdicts))),
              flush=True)

    per_iteration = loop_instructions(args.python, args.project_root) if counts_a else None
    injected = {}  # level (percent) -> (report rows, seconds)
    for level in args.percent:
        iterations = 0
        if counts_a:
            iterations = round(level / 100 * sum(counts_a.values()) / len(counts_a) / per_iteration)
            shares = (f"{name} +{100 * iterations * per_iteration / count:.2f}%" for name, count in counts_a.items())
            print(f"counted variants: {iterations:,} loop iterations a call, {per_iteration:.2f} instructions each: "
                  + ", ".join(shares), flush=True)
        rows, seconds, state, counts, _ = _run(args, workdir, f"injected-{level:g}pc", bench,
                                               f"injected {level:g}%", level / 100, iterations)
        injected[level] = rows, seconds
        print(f"injected {level:g}%: {state}", flush=True)
        if iterations:  # what the spin added where it was counted, against its own count
            added = (f"{name} {b - a:+,.0f} ({(b - a) / (iterations * per_iteration):.0%} of the spin's)"
                     for name, (a, b) in counts.items())
            print("counted, B - A: " + ", ".join(added), flush=True)
    # A variant compare could neither time on a shared CPU nor count is one it cannot see a change in: undetected.
    timed = [{name for name, row in rows.items() if row[1] is not None or row[2].startswith(SHARED_CPU_BACKWARD)}
             for rows, _ in aa]
    measured = sorted(set().union(*timed))

    print()
    print(f"{'variant':<64} " + " ".join(f"{'A/A ' + str(i + 1):>9}" for i in range(args.repeats))
          + "".join(f" {'+' + format(level, 'g') + '%':>9}" for level in injected))
    for name in measured:
        cells = [_cell(rows.get(name)) for rows, _ in aa] + [_cell(rows.get(name)) for rows, _ in injected.values()]
        print(f"{name:<64} " + " ".join(f"{c:>9}" for c in cells))
    print("(B/A, then the verdict: = same, + slower, - faster, ? unknown)")

    # Only variants with a ratio count: the seed's invalid combinations are n/a on both sides.
    comparisons = [v for rows, _ in aa for _, ratio, v in rows.values() if ratio is not None]
    alarms = sum(v in ("slower", "faster") for v in comparisons)
    detected = {level: sum(v == "slower" for _, _, v in rows.values()) for level, (rows, _) in injected.items()}
    flagged = {level: n >= DETECTED_AT_LEAST * len(measured) for level, n in detected.items()}
    top = max(injected)
    worst = max((abs(rows[name][1] - 1) for rows, _ in aa[:STABILITY_REPEATS] for name in measured
                 if rows.get(name, (0, None))[1] is not None), default=None)
    decided = [sum(v in ("same", "slower", "faster") for _, _, v in rows.values()) for rows, _ in aa]
    counted = [len(names) for names in timed]
    results = [
        ("false alarms (A/A slower or faster)", f"{alarms} of {len(comparisons)}",
         _judged(alarms <= FALSE_ALARMS_AT_MOST * len(comparisons), len(aa), FALSE_ALARM_REPEATS)),
        (f"sensitivity ({top:g}% injected: slower)", f"{detected[top]} of {len(measured)}", flagged[top]),
        (f"cost (A/A: decided, wall time; target {DECIDED_WITHIN_SECONDS} s)",
         "; ".join(f"{d} of {n} in {s:.0f} s" for d, n, (_, s) in zip(decided, counted, aa)),
         all(d == n and s <= DECIDED_WITHIN_SECONDS for d, n, (_, s) in zip(decided, counted, aa))),
        (f"stability (first {min(STABILITY_REPEATS, len(aa))} A/A ratios, worst |B/A - 1|)",
         "n/a" if worst is None else f"{worst:.3f}",
         _judged(worst is not None and worst <= STABLE_WITHIN, len(aa), STABILITY_REPEATS)),
    ]
    print()
    for what, figure, met in results:
        print(f"{what:<52} {figure:<40} {met if isinstance(met, str) else 'met' if met else 'NOT met'}")
    for level, (_, seconds) in injected.items():
        print(f"injected {level:g}%: {detected[level]} of {len(measured)} slower, {seconds:.0f} s")
    if len(leans) > 2:  # not a target: what keeps an A/A "unknown" where its rounds narrow off 1
        print(f"A/A comparisons' leans (their imports' mean log B/A), over {len(leans)}: {between_line(leans)}")
    if len(injected) > 1:
        smallest = minimum_detectable(list(injected), flagged, args.band)
        print("smallest change slower in 9 of 10 (and every larger level; not below the band): "
              + ("none of those tried" if smallest is None else f"{smallest:g}%"))
    return 0 if all(met is True for _, _, met in results) else 1


def _judged(met, repeats, needed):
    """A figure's judgement: True or False, or, over fewer A/A comparisons than its target asks,
    why it is neither (a figure of one A/A must not read "met" where the target asks for five)."""
    return met if repeats >= needed else f"too few A/A ({repeats} of {needed})"
