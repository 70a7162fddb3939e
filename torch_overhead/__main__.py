"""Command line: ``python -m torch_overhead run|figures|harness|breakdown|...`` (``--help`` lists them all)."""

import argparse
import os
import sys

from . import backfill, bisect, breakdown, counts, figures, gate, gate_sensitivity, harness, noise, recorded, run, table


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m torch_overhead", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="benchmark the installed torch build, record it and publish the dashboard")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter whose torch is benchmarked (default: this one)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="auto: CUDA when the build sees a GPU, else the CPU")
    p.add_argument("--machine", help="asv machine name (default: the GPU model, or cpu-<hostname>)")
    p.add_argument("--bench", action="append", help="regex selecting benchmarks, as asv run --bench")
    p.add_argument("--slow", action="store_true",
                   help="also run the benchmarks that take minutes (compile time, instruction counts); see README")
    p.add_argument("--quick", action="store_true", help="one sample per variant (smoke test, not for history)")
    p.add_argument("--attribute", action="append", metavar="KEY=VALUE",
                   help="override a benchmark attribute, as asv run --attribute (e.g. repeat=5)")
    p.add_argument("--config", default="asv.conf.json",
                   help="asv config in the project root: asv.conf.clone.json keys history by a PyTorch clone")
    p.add_argument("--cpu-affinity", default=str(max(os.sched_getaffinity(0))),
                   help="CPUs the benchmark processes are pinned to, as asv run --cpu-affinity, or 'none' "
                        "(default: the last CPU; on the H200 pinning narrowed per-process medians)")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=run.main)

    p = sub.add_parser("backfill", help="record several torch builds, each in a throwaway environment")
    p.add_argument("builds", nargs="+", metavar="BUILD[@COMMIT]",
                   help="a torch version, a .whl file or a directory of wheels; @COMMIT checks the build's commit")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--machine", help="asv machine name (default as for run)")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=backfill.main)

    p = sub.add_parser("bisect", help="find the first commit of a PyTorch checkout that made a benchmark slower")
    p.add_argument("good", help="a commit where the benchmark is fast")
    p.add_argument("bad", help="a later commit where it is slow")
    p.add_argument("--checkout", help="the PyTorch git work tree to build in (default: the config's repo)")
    p.add_argument("--benchmark", default=bisect.DEFAULT_BENCHMARK,
                   help="asv name with parameters, as asv shows them (default: %(default)s)")
    p.add_argument("--threshold", type=float, default=1.10,
                   help="a commit is bad when its median is at least this times good's (default 1.10)")
    p.add_argument("--build-command", default=bisect.DEFAULT_BUILD,
                   help="shell command run in the checkout after each checkout; {python} is --python "
                        "(default: %(default)s)")
    p.add_argument("--python", default=sys.executable, help="interpreter the build installs torch into")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--machine", help="asv machine name (default as for run)")
    p.add_argument("--config", default="asv.conf.clone.json", help="asv config the steps are recorded under")
    p.add_argument("--state", help="state file (default: .asv/bisect-GOOD-BAD.json)")
    p.add_argument("--max-steps", type=int, help="stop after this many builds; rerun to continue")
    p.add_argument("--quick", action="store_true", help="as run --quick")
    p.add_argument("--attribute", action="append", metavar="KEY=VALUE", help="as run --attribute")
    p.add_argument("--cpu-affinity", default=str(max(os.sched_getaffinity(0))), help="as run --cpu-affinity")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=bisect.main)

    p = sub.add_parser("gate", help="check recorded results against an expected file (exit 0/1/2)")
    p.add_argument("--machine", required=True)
    p.add_argument("--build", help="torch version or commit (default: the machine's newest results)")
    p.add_argument("--expected", help="CSV: benchmark,metric,expected,noise_margin")
    p.add_argument("--init", metavar="FILE", help="write an expected file from the results instead")
    p.add_argument("--margin", type=float, default=0.1, help="noise margin for --init (default 0.1)")
    p.add_argument("--suggest", help="where to write the suggested expected file")
    p.add_argument("--report", help="write the Markdown report here too")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=gate.main)

    p = sub.add_parser("gate-sensitivity", help="smallest injected per-call overhead the gate flags on this machine")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cpu")
    p.add_argument("--baselines", type=int, default=3, help="baseline runs that set the noise margin")
    p.add_argument("--levels", default="0,1,2,3,5,8,12",
                   help="injected overheads, percent of the headline median; 0 is a control (a false-alarm check)")
    p.add_argument("--margin", type=float,
                   help="noise margin to test, a fraction (0.1 as PyTorch's check_results), instead of the baselines'")
    p.add_argument("--attribute", action="append", metavar="KEY=VALUE",
                   help="benchmark attribute for every run, as run --attribute (e.g. rounds=6)")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=gate_sensitivity.main)

    p = sub.add_parser("counts", help="repeatability of the callgrind instruction counts, run side by side")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=counts.main)

    p = sub.add_parser("figures", help="fidelity, cost and stability of the suite, as a table")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--device", choices=["cuda", "cpu"], required=True)
    p.add_argument("--machine", required=True, help="asv machine name the runs are recorded under")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--benchmark", default=recorded.HEADLINE,
                   help="the host-clock add1 benchmark to check (default: the headline; e.g. layers.Eager.time_add1)")
    p.add_argument("--cpu-affinity", default=str(max(os.sched_getaffinity(0))), help="one CPU, or 'none'")
    p.add_argument("--attribute", action="append", metavar="KEY=VALUE",
                   help="as run --attribute, for every run (e.g. rounds=3: three processes per variant)")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=figures.main)

    p = sub.add_parser("harness", help="how much of asv's figure is asv's per-call harness, in one process")
    p.add_argument("--device", choices=["cuda", "cpu"], required=True)
    p.add_argument("--benchmark", default=recorded.HEADLINE, help="as figures --benchmark")
    p.add_argument("--rounds", type=int, default=40, help="interleaved samples of each way of timing")
    p.add_argument("--cpu-affinity", default=str(max(os.sched_getaffinity(0))), help="one CPU, or 'none'")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=harness.main)

    p = sub.add_parser("noise", help="is it torch or the machine? the headline beside a pure-Python clock, per block")
    p.add_argument("--device", choices=["cuda", "cpu"], required=True)
    p.add_argument("--processes", type=int, default=12)
    p.add_argument("--blocks", type=int, default=6, help="blocks per process")
    p.add_argument("--block-seconds", type=float, default=0.1)
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=noise.main)

    p = sub.add_parser("table", help="Markdown table of a machine's newest recorded medians")
    p.add_argument("--machine", required=True)
    p.add_argument("--update-readme", action="store_true", help="rewrite the table block in README.md")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=table.main)

    p = sub.add_parser("breakdown", help="every layer's median per seed variant: table and PNG")
    p.add_argument("--machine", required=True)
    p.add_argument("--clock", choices=breakdown.CLOCKS, default="host",
                   help="host: no synchronize, as the seed (default); synchronized: CUDA only")
    p.add_argument("--output", help="PNG path (default: docs/breakdown-MACHINE[-synchronized].png)")
    p.add_argument("--project-root", default=run.ROOT, help=argparse.SUPPRESS)
    p.set_defaults(func=breakdown.main)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    args.project_root = os.path.abspath(args.project_root)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # asv writes a run's results only when the run completes, so an interrupted run
        # leaves no partial results, and every earlier file as it was.
        print("error: interrupted; this run recorded nothing, earlier results are untouched", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
