"""The gate's minimum detectable change: the smallest injected per-call overhead it flags.

``python -m torch_overhead gate-sensitivity [--baselines 3] [--levels 0,1,2,3,5,8,12] [--margin M]
[--metric instructions]``

In a throwaway copy of the project (nothing is recorded in this one), on this machine:

1. record the headline's base variant ``--baselines`` times through the main command, as
   a CI job would; the expected value is their median and the noise margin the smallest
   that passes every baseline run (no false alarm seen), rounded up to half a percent, or
   ``--margin`` (a fraction: 0.1 is the margin PyTorch's ``check_results.py`` mostly uses);
2. for each level (percent of that median), record again with that much busy-wait added
   to every call of the compiled function (``torch_overhead/validation/inject``; every run, the
   baselines too, goes through the same wrapper), and ask the gate;
3. print per level the measured change and the gate's verdict, and the minimum detectable
   change: the smallest level from which every larger level is flagged too.

A level of 0 is a control: nothing is added, so a verdict other than ok is a false alarm,
the run-to-run drift beating the margin. Then no minimum detectable change is claimed
(exit 1): the flagged levels may be drift too.

A level is flagged only when it beats this machine's run-to-run noise, so the figure says
as much about the machine as about the gate. ``--attribute rounds=6`` (as ``run``) shows
what more processes per run buy.

``--metric instructions`` does the same for the headline's instruction count (``run --slow``,
under callgrind): each level is a number of iterations of the injection's counting spin, and
the margin is the gate's own for counts (``expected.DEFAULT_MARGINS``) unless ``--margin`` is
given. A count repeats, so the tool judges the measured change, not the level asked for: the
spin's cost inside the compiled call is not exactly its cost counted alone.
"""

import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

from ..lib import expected, main_command
from ..lib.recorded import latest_results, variant_name
from ..lib.suite import COUNTS, settings

INJECT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inject")
INJECT_ITERATIONS_ENV_VAR = "TORCH_OVERHEAD_INJECT_ITERATIONS"  # inject/: a counting process's spin
LOOP_ITERATIONS = (1_000, 101_000)  # two spins counted: their difference over 100,000 iterations
MACHINE = "gate-sensitivity"
# Per --metric: the base variant injected and gated, the gate's metric, the unit printed, and
# the variable that sets the injection (inject/sitecustomize.py).
METRICS = {
    "time": (variant_name(settings.HEADLINE, (False, False, False, False)), "us_per_call", "us",
             settings.INJECT_US_ENV_VAR),
    "instructions": (variant_name(COUNTS, (False, False, False, False)), "instruction_count", "instructions",
                     INJECT_ITERATIONS_ENV_VAR),
}


def _record(project, device, inject, attributes, cpu_affinity, metric):
    """One main-command run of the base variant; its median in microseconds, or its count."""
    base, _, _, variable = METRICS[metric]
    env = dict(os.environ, HOME=project, **{variable: str(inject)},
               PYTHONPATH=os.pathsep.join(p for p in (INJECT_DIR, os.environ.get("PYTHONPATH")) if p))
    cmd = main_command.command(project, device, machine=MACHINE, bench="^" + re.escape(base) + "$", attribute=attributes,
                               cpu_affinity=cpu_affinity, replace=True, slow=metric == "instructions")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    got = expected.measured(latest_results(project, MACHINE)).get(base, (None, None))[1]
    if got is None:
        raise SystemExit(f"error: the run recorded no {metric} for {base}: see `{' '.join(cmd)}`'s output "
                         f"(for instructions, valgrind must be installed or named by TORCH_OVERHEAD_VALGRIND)")
    return got


def _verdict(measured, expected_value, margin, metric):
    """The gate's status for one measured value of the base variant."""
    base, gate_metric = METRICS[metric][:2]
    rows = [{"benchmark": base, "metric": gate_metric, "expected": expected_value, "noise_margin": margin}]
    return expected.check(rows, {base: (gate_metric, measured)})[0]["status"]


def loop_instructions(python, project_root):
    """Instructions per iteration of the injection's counting spin (``inject/``, ``spin_loop``),
    counted by the suite's callgrind path in the benchmarked interpreter."""
    code = ("import json, os; from benchmarks.callgrind import count_side_by_side; "
            f"jobs = {{str(n): ('sitecustomize:spin_calls', [n]) for n in {LOOP_ITERATIONS}}}; "
            "print(json.dumps(count_side_by_side(jobs, dict(os.environ), blocks=1, calls=1)))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (INJECT_DIR, project_root,
                                                                  os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True)
    got = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else {}
    short, long = (got.get(str(n), {}).get("calling_thread") for n in LOOP_ITERATIONS)
    if not short or not long:
        raise SystemExit(f"error: the injection's loop could not be counted under callgrind: "
                         f"{(done.stderr.strip().splitlines() or [str(got)])[-1]}")
    return (long - short) / (LOOP_ITERATIONS[1] - LOOP_ITERATIONS[0])


def minimum_detectable(levels, flagged, margin):
    """The smallest tried level (percent) from which every larger level is flagged, or None.

    Only levels at or above the noise margin count: the gate flags a change beyond the
    margin, so a smaller injected overhead is flagged only when drift adds the rest, and
    claiming it would credit the gate with the drift."""
    tried = [lv for lv in levels if lv > 0]
    detectable = [lv for lv in tried
                  if lv >= margin * 100 and all(flagged[x] for x in tried if x >= lv)]
    return min(detectable, default=None)


def main(args):
    if args.margin is not None and args.margin < 0:
        print(f"error: --margin {args.margin}: give a fraction of 0 or more (0.1 is a 10% margin)", file=sys.stderr)
        return 2
    metric, counted = args.metric, args.metric == "instructions"
    unit = METRICS[metric][2]
    levels = [float(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="gate-sensitivity-") as project:
        main_command.copy_project(args.project_root, project)
        per_iteration = loop_instructions(sys.executable, args.project_root) if counted else None  # fails fast

        def record(inject):
            return _record(project, args.device, inject, args.attribute or [], args.cpu_affinity, metric)

        baselines = []
        for i in range(args.baselines):
            baselines.append(record(0))
            print(f"baseline {i + 1}/{args.baselines}: {baselines[-1]:.2f} {unit}", flush=True)
        expected_value = statistics.median(baselines)
        worst = max(abs(b / expected_value - 1) for b in baselines)
        if args.margin is not None:
            margin, source = args.margin, "as given"
        elif counted:
            margin, source = expected.DEFAULT_MARGINS["instruction_count"], "the gate's for counts"
        else:
            margin = math.ceil(worst * 200 + 1e-9) / 200  # next half percent above the worst baseline
            source = f"from {args.baselines} baseline runs"
        print(f"expected {expected_value:.2f} {unit}, noise margin {margin * 100:.1f}% {source} "
              f"(worst baseline {worst * 100:.2f}% off the median)", flush=True)

        flagged, false_alarms = {}, 0
        for level in levels:
            if counted:
                inject = round(expected_value * level / 100 / per_iteration)
                asked = f"{inject} spin iterations"
            else:
                inject = expected_value * level / 100
                asked = f"{inject:6.2f} us"
            got = record(inject)
            status = _verdict(got, expected_value, margin, metric)
            change = (got / expected_value - 1) * 100
            # a count repeats: what the gate saw is the measured change, not the level asked for
            flagged[round(change, 2) if counted and level else level] = status == "regression"
            false_alarms += level == 0 and status != "ok"
            print(f"injected {level:5.1f}% ({asked}): measured {got:8.2f} {unit} "
                  f"({change:+6.2f}%) -> gate: {status}", flush=True)

    print()
    chosen = ", ".join(args.attribute or []) or "default settings"
    print(f"device {args.device}, {chosen}: noise margin {margin * 100:.1f}% {source}")
    if false_alarms:
        print(f"no minimum detectable change: {false_alarms} of {levels.count(0)} runs with nothing injected were "
              "flagged, so drift beats the margin here; record more baselines (--baselines) or compare builds "
              "side by side")
        return 1
    detectable = minimum_detectable(list(flagged), flagged, margin)
    if detectable is not None:
        print(f"minimum detectable change: {detectable:.{2 if counted else 1}f}% of the headline "
              f"{'count' if counted else 'median'} ({expected_value * detectable / 100:.2f} {unit} per call)")
        return 0
    if max(flagged) < margin * 100:
        print(f"no minimum detectable change: every tried level is below the noise margin ({margin * 100:.1f}%), "
              "which only drift can get it past; try larger --levels, more --baselines, or a quieter machine")
        return 1
    print(f"minimum detectable change: above {max(flagged):.1f}% (no tried level was flagged reliably)")
    return 1
