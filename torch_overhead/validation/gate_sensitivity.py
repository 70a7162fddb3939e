"""The gate's minimum detectable change: the smallest injected per-call overhead it flags.

``python -m torch_overhead gate-sensitivity [--baselines 3] [--levels 0,1,2,3,5,8,12] [--margin M]``

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
"""

import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

from ..lib import expected, main_command
from ..lib.recorded import latest_results, variant_name
from ..lib.suite import settings

BASE = variant_name(settings.HEADLINE, (False, False, False, False))
INJECT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inject")
MACHINE = "gate-sensitivity"


def _record(project, device, inject_us, attributes, cpu_affinity):
    """One main-command run of the base variant; its median in microseconds."""
    env = dict(os.environ, HOME=project, **{settings.INJECT_US_ENV_VAR: str(inject_us)},
               PYTHONPATH=os.pathsep.join(p for p in (INJECT_DIR, os.environ.get("PYTHONPATH")) if p))
    cmd = main_command.command(project, device, machine=MACHINE, bench="^" + re.escape(BASE) + "$", attribute=attributes,
                               cpu_affinity=cpu_affinity, replace=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return expected.measured(latest_results(project, MACHINE))[BASE][1]


def _verdict(measured_us, expected_us, margin):
    """The gate's status for one measured value of the base variant."""
    rows = [{"benchmark": BASE, "metric": "us_per_call", "expected": expected_us, "noise_margin": margin}]
    return expected.check(rows, {BASE: ("us_per_call", measured_us)})[0]["status"]


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
    levels = [float(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="gate-sensitivity-") as project:
        main_command.copy_project(args.project_root, project)
        baselines = []
        for i in range(args.baselines):
            baselines.append(_record(project, args.device, 0, args.attribute or [], args.cpu_affinity))
            print(f"baseline {i + 1}/{args.baselines}: {baselines[-1]:.2f} us", flush=True)
        expected_us = statistics.median(baselines)
        worst = max(abs(b / expected_us - 1) for b in baselines)
        if args.margin is None:
            margin = math.ceil(worst * 200 + 1e-9) / 200  # next half percent above the worst baseline
            source = f"from {args.baselines} baseline runs"
        else:
            margin, source = args.margin, "as given"
        print(f"expected {expected_us:.2f} us, noise margin {margin * 100:.1f}% {source} "
              f"(worst baseline {worst * 100:.2f}% off the median)", flush=True)

        flagged, false_alarms = {}, 0
        for level in levels:
            inject_us = expected_us * level / 100
            got = _record(project, args.device, inject_us, args.attribute or [], args.cpu_affinity)
            status = _verdict(got, expected_us, margin)
            flagged[level] = status == "regression"
            false_alarms += level == 0 and status != "ok"
            print(f"injected {level:5.1f}% ({inject_us:6.2f} us): measured {got:8.2f} us "
                  f"({(got / expected_us - 1) * 100:+6.1f}%) -> gate: {status}", flush=True)

    print()
    chosen = ", ".join(args.attribute or []) or "default settings"
    print(f"device {args.device}, {chosen}: noise margin {margin * 100:.1f}% {source}")
    if false_alarms:
        print(f"no minimum detectable change: {false_alarms} of {levels.count(0)} runs with nothing injected were "
              "flagged, so drift beats the margin here; record more baselines (--baselines) or compare builds "
              "side by side")
        return 1
    detectable = minimum_detectable(levels, flagged, margin)
    if detectable is not None:
        print(f"minimum detectable change: {detectable:.1f}% of the headline median "
              f"({expected_us * detectable / 100:.2f} us per call)")
        return 0
    if max(levels) < margin * 100:
        print(f"no minimum detectable change: every tried level is below the noise margin ({margin * 100:.1f}%), "
              "which only drift can get it past; try larger --levels, more --baselines, or a quieter machine")
        return 1
    print(f"minimum detectable change: above {max(levels):.1f}% (no tried level was flagged reliably)")
    return 1
