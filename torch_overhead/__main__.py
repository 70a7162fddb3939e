"""Command line: ``python -m torch_overhead COMMAND`` (``--help`` lists the commands and the suite's own checks)."""

import argparse
import os
import sys

from .commands import backfill, bisect, breakdown, callgrind_diff, compare, gate, run, steps, table
from .lib import paired
from .lib.suite import ROOT, settings
from .validation import compare_check, count_spread, counts, figures, gate_sensitivity, harness, noise, trials

EPILOG = """validation tools (the suite's own checks, not needed to benchmark):
  figures           fidelity, cost and stability of the suite, as a table
  harness           how much of asv's figure is asv's own per-call harness, in one process
  noise             is it torch or the machine? add1 beside a pure-Python clock, per block
  counts            repeatability of the callgrind instruction counts
  count-spread      how far one job's count moves between counting processes, and what evens it out
  gate-sensitivity  the smallest injected per-call overhead the gate flags on this machine
  compare-check     false alarms, sensitivity, cost and stability of compare's verdicts here
  trials            bad input and faults replayed on scratch copies: exit status, message, files changed
"""


def _parents():
    """The options several commands share, each defined once (argparse parent parsers)."""
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--project-root", default=ROOT, help=argparse.SUPPRESS)

    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                        help="device to benchmark on; auto: CUDA when the torch build sees a GPU, else the CPU")

    python = argparse.ArgumentParser(add_help=False)
    python.add_argument("--python", default=sys.executable,
                        help="interpreter whose torch is benchmarked (default: this one)")

    machine = argparse.ArgumentParser(add_help=False)
    machine.add_argument("--machine", help="asv machine name (default: the GPU model, or cpu-<hostname>)")

    recorded_machine = argparse.ArgumentParser(add_help=False)
    recorded_machine.add_argument("--machine", required=True, help="asv machine name whose results to read")

    pinning = argparse.ArgumentParser(add_help=False)
    pinning.add_argument("--cpu-affinity", default=str(max(os.sched_getaffinity(0))),
                         help="CPU the benchmark processes are pinned to, or 'none' (default: the last CPU)")

    timing = argparse.ArgumentParser(add_help=False, parents=[pinning])
    timing.add_argument("--attribute", action="append", metavar="KEY=VALUE",
                        help="override a benchmark attribute, as asv run --attribute (e.g. rounds=3)")

    one_bench = argparse.ArgumentParser(add_help=False)
    one_bench.add_argument("--bench", default=settings.HEADLINE,
                           help="one benchmark: its asv name, or a regex matching only it (default: %(default)s)")
    return root, device, python, machine, recorded_machine, pinning, timing, one_bench


def parse(argv):
    root, device, python, machine, recorded_machine, pinning, timing, one_bench = _parents()
    parser = argparse.ArgumentParser(prog="python -m torch_overhead", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands (python -m torch_overhead COMMAND --help for each)")

    def command(name, func, help, parents=(), listed=True):
        listing = {"help": help} if listed else {}  # argparse lists a command only when given help
        p = sub.add_parser(name, description=help, parents=[root, *parents], **listing)
        p.set_defaults(func=func)
        return p

    p = command("run", run.main, "benchmark the installed torch build, record it and publish the dashboard",
                [python, device, machine, timing])
    p.add_argument("--bench", action="append", metavar="REGEX", help="select benchmarks, as asv run --bench")
    p.add_argument("--slow", action="store_true",
                   help="also run the benchmarks that take minutes (compile time, instruction counts)")
    p.add_argument("--quick", action="store_true", help="one sample per variant (smoke test, not for history)")
    p.add_argument("--replace", action="store_true",
                   help="replace figures already recorded for this build and machine (never a full run's by --quick)")
    p.add_argument("--config", default="asv.conf.json",
                   help="asv config in the project root: asv.conf.clone.json keys history by a PyTorch clone")

    p = command("backfill", backfill.main, "record several torch builds, each in a throwaway environment",
                [device, machine])
    p.add_argument("builds", nargs="*", metavar="BUILD[@COMMIT]",
                   help="a torch version, a .whl file or a directory of wheels; @COMMIT checks the build's commit")
    p.add_argument("--bench", action="append", metavar="REGEX",
                   help="select benchmarks, as run --bench (e.g. '^(?!compile_time\\.)': all but compile times)")
    p.add_argument("--shard", metavar="K/N", help="record only builds i (from 0, as listed) with i %% N == K-1")
    p.add_argument("--merge", nargs="+", metavar="DIR",
                   help="merge these shard projects' results/ and builds.json into this project instead "
                        "(with --bench: only the variants it selects)")
    p.add_argument("--replace", action="store_true",
                   help="with --merge and --bench: the selected variants replace those recorded (shards run by "
                        "run --replace --bench on a copy of this project)")

    p = command("bisect", bisect.main, "find the first commit of a PyTorch checkout that made a benchmark slower",
                [python, device, machine, timing])
    p.add_argument("good", help="a commit where the benchmark is fast")
    p.add_argument("bad", help="a later commit where it is slow")
    p.add_argument("--metric", choices=sorted(bisect.METRICS), default="time",
                   help="what decides each step: time, the median per call (default), or instructions, the "
                        "instructions per call counted under callgrind (deterministic)")
    p.add_argument("--bench", help="one benchmark variant of that metric: its asv name with parameters, or a regex "
                                   "matching only it (default: the base variant, "
                                   + " or ".join(b for b, _, _ in bisect.METRICS.values()) + ")")
    p.add_argument("--checkout", help="the PyTorch git work tree to build in (default: the config's repo)")
    p.add_argument("--threshold", type=float,
                   help="a commit is bad when its figure is at least this times good's "
                        "(default 1.10 for time, 1.015 for instructions)")
    p.add_argument("--build-command", default=bisect.DEFAULT_BUILD,
                   help="shell command run in the checkout after each checkout; {python} is --python "
                        "(default: %(default)s)")
    p.add_argument("--config", default="asv.conf.clone.json", help="asv config the steps are recorded under")
    p.add_argument("--state", help="state file (default: .asv/bisect-GOOD-BAD.json)")
    p.add_argument("--max-steps", type=int, help="stop after this many builds; rerun to continue")
    p.add_argument("--quick", action="store_true", help="as run --quick")
    p.add_argument("--good-python", metavar="PYTHON",
                   help="an interpreter holding GOOD's build: each step is decided by a paired comparison "
                        "against it (compare, both builds in the same minutes), not by GOOD's recorded median")
    p.add_argument("--budget-seconds", type=float, default=300,
                   help="with --good-python: compare's budget per step (default 300)")

    p = command("gate", gate.main, "check recorded results against an expected file, or a baseline build "
                "run beside (exit 0/1/2)", [recorded_machine, python, device, timing])
    p.add_argument("--build", help="torch version or commit (default: the machine's newest build)")
    p.add_argument("--expected", help="CSV: benchmark,metric,expected,noise_margin")
    p.add_argument("--init", metavar="FILE", help="write an expected file from the results instead")
    p.add_argument("--margin", type=float,
                   help="noise margin for --init, a fraction (default 0.1 for times, 0.015 for instruction counts)")
    p.add_argument("--suggest", help="where to write the suggested expected file")
    p.add_argument("--report", help="write the Markdown report here too")
    p.add_argument("--baseline-python", metavar="PYTHON",
                   help="instead of --expected: compare with this interpreter's torch build, run at the same time")
    p.add_argument("--bench", action="append", metavar="REGEX", help="with --baseline-python: as compare's")
    p.add_argument("--jobs", type=int, default=1, help="with --baseline-python: compare's lanes")
    p.add_argument("--budget-seconds", type=float, default=300, help="with --baseline-python: compare's budget")

    p = command("compare", compare.main, "is B slower than A? two builds or settings in interleaved rounds, "
                "per variant: slower, faster, same or unknown", [python, device, machine, timing])
    p.add_argument("--python-a", help="side A's interpreter (default: --python)")
    p.add_argument("--python-b", help="side B's interpreter (default: --python)")
    p.add_argument("--env-a", action="append", metavar="KEY=VALUE",
                   help="environment variable for side A's benchmark processes only (e.g. an Inductor flag)")
    p.add_argument("--env-b", action="append", metavar="KEY=VALUE", help="as --env-a, for side B")
    p.add_argument("--bench", action="append", metavar="REGEX",
                   help="select benchmark variants, as run --bench (default: the headline's variants)")
    p.add_argument("--band", type=float, default=paired.BAND,
                   help="same: the ratio's interval lies within 1 +- band; slower/faster: wholly beyond it "
                        f"(default {paired.BAND})")
    p.add_argument("--budget-seconds", type=float, default=300,
                   help="stop adding rounds after this many seconds, or when the instruction counts are done "
                        "if later (default 300); rerun to add more")
    p.add_argument("--max-rounds", type=int, help="stop after this many rounds")
    p.add_argument("--estimator", choices=sorted(paired.ESTIMATORS), default="median",
                   help="one process's figure from its samples (default: median, as asv)")
    p.add_argument("--report", help="write the Markdown report here")
    p.add_argument("--pairing", choices=["back-to-back", "simultaneous"], default="simultaneous",
                   help="simultaneous (default): both sides' processes at once, their sampling started together "
                        "(--cpu-affinity: one CPU both share, or two, one each at random); back-to-back: one "
                        "side's process after the other's, in a random order")
    p.add_argument("--hash-seed", choices=["common", "independent"], default="common",
                   help="common (default): both sides' processes of a round run with one PYTHONHASHSEED, drawn "
                        "anew each round and recorded; independent: each side's interpreter draws its own")
    p.add_argument("--jobs", type=int, default=1,
                   help="lanes of pairs run side by side, each on its own share of --cpu-affinity's CPUs "
                        "(e.g. --jobs 8 --cpu-affinity 8-15: one CPU per lane)")

    p = command("table", table.main, "Markdown table of a machine's newest recorded medians", [recorded_machine])
    p.add_argument("--metric", choices=["time", "instructions"], default="time",
                   help="time: the headline's medians (default); instructions: the instruction counts beside the "
                        "seed's published ones")
    p.add_argument("--update-readme", action="store_true", help="rewrite the table block in README.md")

    p = command("breakdown", breakdown.main, "every layer's median per seed variant: table and PNG",
                [recorded_machine])
    p.add_argument("--build", help="torch version or commit (default: the machine's newest build)")
    p.add_argument("--clock", choices=breakdown.CLOCKS, default="host",
                   help="host: no synchronize, as the seed (default); synchronized: CUDA only")
    p.add_argument("--metric", choices=["time", "instructions"], default="time",
                   help="time (default, per --clock) or instructions per call (recorded by run --slow)")
    p.add_argument("--output", help="PNG path (default: docs/breakdown-MACHINE[-synchronized|-instructions].png)")

    p = command("steps", steps.main, "largest build-to-build steps per variant and layer, and a picture",
                [recorded_machine])
    p.add_argument("--top", type=int, default=3, help="steps listed per variant (default 3)")
    p.add_argument("--plot", metavar="PNG", help="also draw each variant across the builds into this file")
    p.add_argument("--against", metavar="MACHINE",
                   help="also set this machine's instruction counts beside them: ratios and steps, build by build")
    p.add_argument("--between", nargs=2, metavar=("OLD", "NEW"),
                   help="instead: every variant's instruction count at every layer, build OLD -> NEW (Markdown)")

    p = command("callgrind-diff", callgrind_diff.main,
                "per-function callgrind instructions of one variant in two builds, diffed", [device])
    p.add_argument("old", metavar="OLD_PYTHON", help="interpreter with the older torch build")
    p.add_argument("new", metavar="NEW_PYTHON", help="interpreter with the newer torch build")
    p.add_argument("--variant", default="base",
                   help="flags that are on, joined by '+' (e.g. requires_grad+backward), or base (default)")
    p.add_argument("--top", type=int, default=25, help="functions listed, exclusive and inclusive (default 25)")
    p.add_argument("--layer", default="inductor", choices=list(settings.LAYERS),
                   help="layer counted (default inductor, the headline); with --new-layer, OLD_PYTHON's")
    p.add_argument("--new-layer", choices=list(settings.LAYERS), help="NEW_PYTHON's layer, to diff two layers of one build")

    # The suite's own checks: listed under their own heading (EPILOG), not among the commands.
    p = command("figures", figures.main, "fidelity, cost and stability of the suite, as a table",
                [python, device, recorded_machine, timing, one_bench], listed=False)
    p.add_argument("--runs", type=int, default=3)

    p = command("harness", harness.main, "how much of asv's figure is asv's per-call harness, in one process",
                [device, pinning, one_bench], listed=False)
    p.add_argument("--rounds", type=int, default=40, help="interleaved samples of each way of timing")

    p = command("noise", noise.main, "is it torch or the machine? add1 beside a pure-Python clock, per block",
                [device], listed=False)
    p.add_argument("--processes", type=int, default=12)
    p.add_argument("--blocks", type=int, default=6, help="blocks per process")
    p.add_argument("--block-seconds", type=float, default=0.1)

    p = command("counts", counts.main, "repeatability of the callgrind instruction counts, run side by side",
                [device], listed=False)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--processes", type=int, help="counting processes at once (default: one per CPU)")
    p.add_argument("--recorded", metavar="MACHINE", help="also show the counts recorded for this machine's newest build")

    p = command("count-spread", count_spread.main,
                "how far one job's instruction count moves between counting processes", [device], listed=False)
    p.add_argument("--variant", action="append",
                   help="flags that are on, joined by '+', or base; repeat for more (default: the two backward variants)")
    p.add_argument("--layer", default="inductor", choices=list(settings.LAYERS), help="layer counted (default inductor)")
    p.add_argument("--per-job", type=int, default=8, help="counting processes per job (default 8)")
    p.add_argument("--calls", type=int, help="counted calls per block (default: the suite's for each job)")
    p.add_argument("--processes", type=int, help="counting processes at once (default: one per CPU)")
    p.add_argument("--pin-each", action="store_true",
                   help="each counting process on a CPU of its own (default: any CPU, as the suite's counting)")

    p = command("gate-sensitivity", gate_sensitivity.main,
                "smallest injected per-call overhead the gate flags on this machine", [device, timing], listed=False)
    p.add_argument("--baselines", type=int, default=3, help="baseline runs that set the noise margin")
    p.add_argument("--levels", default="0,1,2,3,5,8,12",
                   help="injected overheads, percent of the headline median (or count); 0 is a control (a "
                        "false-alarm check)")
    p.add_argument("--margin", type=float,
                   help="noise margin to test, a fraction (0.1 as PyTorch's check_results), instead of the baselines' "
                        "(for instructions: the gate's 0.015)")
    p.add_argument("--metric", choices=sorted(gate_sensitivity.METRICS), default="time",
                   help="time: the headline's median (default); instructions: its instruction count (run --slow, "
                        "under callgrind), the levels injected as iterations of a counted spin")

    p = command("compare-check", compare_check.main,
                "false alarms, sensitivity, cost and stability of compare's verdicts on this machine",
                [python, device, timing], listed=False)
    p.add_argument("--jobs", type=int, default=1, help="compare's --jobs for the A/A comparisons")
    p.add_argument("--repeats", type=int, default=5, help="A/A comparisons (false alarms; the first 3: stability)")
    p.add_argument("--percent", default="5",
                   help="injected per-call cost, percent of each variant's median; a comma list (2,3,5) also gives "
                        "the smallest change detected")
    p.add_argument("--budget-seconds", type=float, default=300, help="compare's budget, per comparison")
    p.add_argument("--max-rounds", type=int, help="compare's --max-rounds, per comparison")
    p.add_argument("--band", type=float, default=paired.BAND, help="compare's --band")
    p.add_argument("--neighbours", type=int, default=0, help="unpinned busy processes run meanwhile: a noisy state")
    p.add_argument("--bench", action="append", metavar="REGEX", help="as compare's (default: the headline's variants)")
    p.add_argument("--keep", metavar="DIR", help="copy each comparison's report and output into DIR; run "
                   "again with the same DIR, the comparisons it holds finished are read, not run again")

    p = command("trials", trials.main,
                "bad input and faults replayed on scratch copies: exit status, message, files changed",
                [python], listed=False)
    p.add_argument("--only", metavar="TEXT", help="only the trials whose name contains TEXT")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    args.project_root = os.path.abspath(args.project_root)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted; results recorded before the interruption are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
