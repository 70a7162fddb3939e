"""Trials of bad input and faults: does every one fail safe?

``python -m torch_overhead trials [--python PY] [--only SUBSTRING]``

Each trial runs the commands as a user would, on its own scratch copy of this project
(asv.conf.json, benchmarks/, and the committed results/, builds.json and html/), with
``HOME`` pointed at that copy: bad options, corrupt files of each kind, recorded figures
that a re-run would replace, read-only folders, a hanging interpreter, Ctrl-C at each step
of ``run``, and two runs at once. Runs use ``--quick`` and one variant of the headline.

Per trial it prints the exit status beside the one documented for that case, the
``error:`` line (else the last line of output), and which files under results/,
builds.json and html/ changed (sha256 before and after). A trial passes when the status is
the documented one and only the files the case may change did. For an interruption the
moment decides what was recorded, so there the check is that the message says truly what
changed. The exit status is 1 when any trial fails.
"""

import fnmatch
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from ..lib import main_command
from ..lib.suite import ROOT

BASE = r"RuntimeOverhead.time_add1\(False, False, False, False\)"
RECORDED = "cpu-2core"  # the committed full run of this machine's build (torch 2.13.0, CPU)
BUILD = "cf30153c4c131c8164ee7798e5022d810682e2cb"  # that build: torch 2.13.0+cpu's git_version
NEW = "trials"  # a machine with nothing recorded in the committed results
# asv's listing of the suite (code, versions), rewritten by every `asv run` that gets to discover the suite.
LISTING = "results/benchmarks.json"
TRIALS = []


def trial(expected, may_change=()):
    """Register a trial: ``expected`` exit status, and globs of the files it may change."""
    def register(func):
        TRIALS.append((func.__name__.replace("_", " "), func, expected, may_change))
        return func
    return register


class Scratch:
    """One scratch project, and the commands run in it."""

    def __init__(self, path, python):
        self.path, self.python = path, python
        main_command.copy_project(ROOT, path)
        for name in ("results", "html"):
            shutil.copytree(os.path.join(ROOT, name), os.path.join(path, name))
        shutil.copy(os.path.join(ROOT, "builds.json"), path)
        self.env = dict(os.environ, HOME=path)

    def at(self, *parts):
        return os.path.join(self.path, *parts)

    def argv(self, command, *args):
        return [sys.executable, "-m", "torch_overhead", command, "--project-root", self.path, *args]

    def run_argv(self, *args, machine=NEW):
        return self.argv("run", "--python", self.python, "--device", "cpu", "--machine", machine, "--quick",
                         "--bench", BASE, *args)

    def call(self, argv, **kwargs):
        done = subprocess.run(argv, env=kwargs.pop("env", self.env), capture_output=True, text=True, **kwargs)
        return done.returncode, message(done.stdout, done.stderr)

    def run(self, *args, machine=NEW):
        return self.call(self.run_argv(*args, machine=machine))

    def results_file(self, machine=RECORDED):
        folder = self.at("results", machine)
        return next(os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.startswith(BUILD[:8]))

    def fingerprint(self):
        found = {}
        for top in ("results", "html", "builds.json"):
            path = self.at(top)
            files = [path] if os.path.isfile(path) else [os.path.join(d, n) for d, _, ns in os.walk(path) for n in ns]
            for f in files:
                with open(f, "rb") as fh:
                    found[os.path.relpath(f, self.path)] = hashlib.sha256(fh.read()).hexdigest()
        return found


def message(stdout, stderr):
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    if errors:
        return " / ".join(errors)
    lines = [line.strip() for line in (stdout + stderr).splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


# -- bad options: refused before anything is probed or run ----------------------------------

@trial(2)
def run_machine_name_is_a_path(s):
    return s.run(machine="../escaped")


@trial(2)
def run_config_missing(s):
    return s.run("--config", "nosuch.json")


@trial(2)
def run_config_not_json(s):
    with open(s.at("broken.json"), "w") as f:
        f.write("{ not json")
    return s.run("--config", "broken.json")


@trial(2)
def run_bench_not_a_regex(s):
    return s.call(s.argv("run", "--device", "cpu", "--machine", NEW, "--quick", "--bench", "("))


@trial(2)
def run_attribute_bad_value(s):
    return s.run("--attribute", "rounds=x")


@trial(2)
def run_attribute_unknown(s):
    return s.run("--attribute", "colour=red")


@trial(2)
def run_attribute_not_key_value(s):
    return s.run("--attribute", "rounds")


@trial(2)
def run_cpu_affinity_out_of_range(s):
    return s.run("--cpu-affinity", "99")


@trial(2)
def run_cpu_affinity_not_a_number(s):
    return s.run("--cpu-affinity", "last")


@trial(2)
def run_device_cuda_without_gpu(s):
    return s.call(s.argv("run", "--python", s.python, "--device", "cuda", "--machine", NEW, "--quick"))


@trial(2)
def run_python_missing(s):
    return s.call(s.argv("run", "--python", s.at("no-such-python"), "--device", "cpu", "--machine", NEW))


@trial(2)
def run_torch_fails_to_import(s):
    broken = s.at("broken-torch", "torch")
    os.makedirs(broken)
    with open(os.path.join(broken, "__init__.py"), "w") as f:
        f.write("raise ImportError('libtorch_cuda.so: cannot open shared object file')\n")
    return s.call(s.run_argv(), env=dict(s.env, PYTHONPATH=os.path.dirname(broken)))


@trial(2)
def run_interpreter_hangs(s):
    """The probe gives up after its timeout and ends the interpreter's children too."""
    pid_file = s.at("hang.pid")
    python = s.at("hanging-python")
    with open(python, "w") as f:
        f.write(f"#!/bin/sh\nsleep 3600 &\necho $! > {pid_file}\nwait\n")
    os.chmod(python, 0o755)
    status, text = s.call(s.argv("run", "--python", python, "--device", "cpu", "--machine", NEW))
    time.sleep(1)
    return status, f"{text} [child left running: {'yes' if running(int(open(pid_file).read())) else 'no'}]"


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie was killed; reaping is init's
    except FileNotFoundError:
        return False


@trial(2, [LISTING, f"results/{NEW}/machine.json"])
def run_bench_matches_nothing(s):
    return s.call(s.argv("run", "--python", s.python, "--device", "cpu", "--machine", NEW, "--quick",
                         "--bench", "time_add_one_misspelled"))


# -- recorded figures: never replaced unasked, never by --quick over a full run -------------

@trial(2)
def run_quick_over_a_recorded_full_run(s):
    return s.run(machine=RECORDED)


@trial(2)
def run_quick_replace_over_a_recorded_full_run(s):
    return s.run("--replace", machine=RECORDED)


@trial(2)
def run_again_over_a_quick_run_without_replace(s):
    s.run()
    s.before = s.fingerprint()
    return s.run()


@trial(0, [f"results/{NEW}/*", "html/*", LISTING])
def run_again_over_a_quick_run_with_replace(s):
    s.run()
    s.before = s.fingerprint()
    return s.run("--replace")


@trial(2, [LISTING])
def run_on_a_recorded_machine_from_another_host_keeps_its_facts(s):
    """asv rewrites results/MACHINE/machine.json at the start of every run; the recorded one
    must survive a host whose kernel build and memory differ (it runs, matches nothing)."""
    return s.call(s.argv("run", "--python", s.python, "--device", "cpu", "--machine", RECORDED, "--quick",
                         "--bench", "time_add_one_misspelled"))


@trial(2)
def run_on_a_recorded_machine_name_from_other_hardware(s):
    path = s.at("results", NEW, "machine.json")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        json.dump({"arch": "aarch64", "cpu": "Another CPU", "machine": NEW, "num_cpu": "64", "os": "Linux",
                   "ram": "1", "version": 1}, f)
    s.before = s.fingerprint()
    return s.run()


# -- corrupt or missing files ---------------------------------------------------------------

def corrupt_results(s):
    with open(s.results_file(), "w") as f:
        f.write('{"commit_hash": "trunc')
    s.before = s.fingerprint()


@trial(2)
def run_corrupt_results_file(s):
    corrupt_results(s)
    return s.run(machine=RECORDED)


@trial(2)
def table_corrupt_results_file(s):
    corrupt_results(s)
    return s.call(s.argv("table", "--machine", RECORDED))


@trial(2)
def breakdown_corrupt_results_file(s):
    corrupt_results(s)
    return s.call(s.argv("breakdown", "--machine", RECORDED, "--output", s.at("b.png")))


@trial(2)
def gate_corrupt_results_file(s):
    corrupt_results(s)
    return s.call(s.argv("gate", "--machine", RECORDED, "--init", s.at("e.csv")))


@trial(2)
def run_results_of_another_benchmark_version(s):
    with open(s.results_file()) as f:
        data = json.load(f)
    version = data["result_columns"].index("version")
    for name, row in data["results"].items():
        if name.startswith("runtime_overhead."):
            row[version] = "runtime_overhead-0"
    with open(s.results_file(), "w") as f:
        json.dump(data, f)
    s.before = s.fingerprint()
    return s.run(machine=RECORDED)


@trial(2)
def run_corrupt_machine_json(s):
    os.makedirs(s.at("results", NEW))
    with open(s.at("results", NEW, "machine.json"), "w") as f:
        f.write("{")
    s.before = s.fingerprint()
    return s.run()


@trial(2)
def run_corrupt_build_index(s):
    with open(s.at("builds.json"), "w") as f:
        f.write("{not json")
    s.before = s.fingerprint()
    return s.run()


@trial(2)
def run_build_index_deleted(s):
    os.remove(s.at("builds.json"))
    s.before = s.fingerprint()
    return s.run()


@trial(0, [LISTING, f"results/{NEW}/*", "html/*"])
def run_corrupt_suite_listing(s):
    """results/benchmarks.json is asv's listing of the suite, rewritten by every run."""
    with open(s.at("results", "benchmarks.json"), "w") as f:
        f.write("{")
    s.before = s.fingerprint()
    return s.run()


@trial(2)
def bisect_corrupt_suite_listing(s):
    with open(s.at("results", "benchmarks.json"), "w") as f:
        f.write("{")
    s.before = s.fingerprint()
    return s.call(s.argv("bisect", "HEAD~1", "HEAD", "--config", "asv.conf.json", "--checkout", ROOT,
                         "--machine", NEW))


@trial(1, ["builds.json", f"results/{NEW}/*", LISTING])
def run_build_index_corrupted_while_benchmarking(s):
    """asv publish fails on the corrupt index: the figures are recorded, the dashboard is the previous one."""
    proc = subprocess.Popen(s.run_argv(), env=s.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "Benchmarking" in line:
            break
    time.sleep(1)
    with open(s.at("builds.json"), "w") as f:
        f.write("{corrupt")
    out, err = proc.communicate()
    return proc.returncode, message(out, err)


# -- read-only folders ----------------------------------------------------------------------

# Root writes through any file mode: a read-only trial runs without the capabilities that allow it.
RESPECTING_MODES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner",
                    "--inh-caps=-dac_override,-dac_read_search,-fowner"]


def respecting_modes(argv):
    """``argv`` run so that file modes apply to it, as they do to any user but root."""
    return RESPECTING_MODES + argv if os.geteuid() == 0 else argv


def read_only(s, *parts):
    os.chmod(s.at(*parts), 0o555)
    s.before = s.fingerprint()


@trial(2)
def run_results_folder_read_only(s):
    read_only(s, "results")
    return s.call(respecting_modes(s.run_argv()))


@trial(2)
def run_machine_results_folder_read_only(s):
    read_only(s, "results", RECORDED)
    return s.call(respecting_modes(s.run_argv("--replace", machine=RECORDED)))


@trial(2)
def run_project_folder_read_only(s):
    """html/ is replaced by a rename in the project folder, and builds.json rewritten there."""
    read_only(s, ".")
    return s.call(respecting_modes(s.run_argv()))


@trial(2, [f"results/{NEW}/machine.json"])
def run_disk_full(s):
    """A file-size limit stands in for a full disk: a write past 16 kB fails (EFBIG, as ENOSPC would),
    and asv's suite listing is larger. asv leaves it cut short; the runner restores its copy."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return s.call(s.run_argv(), preexec_fn=limit)


# -- expected files of the gate -------------------------------------------------------------

HEADER = "benchmark,metric,expected,noise_margin\n"
ROW = '"runtime_overhead.RuntimeOverhead.time_add1(False, False, False, False)",us_per_call,'


def gate_with(s, text, *args):
    with open(s.at("expected.csv"), "w", encoding="utf-8") as f:
        f.write(text)
    return s.call(s.argv("gate", "--machine", RECORDED, "--expected", s.at("expected.csv"), *args))


@trial(2)
def gate_expected_file_empty(s):
    return gate_with(s, "")


@trial(2)
def gate_expected_file_header_only(s):
    return gate_with(s, HEADER)


@trial(2)
def gate_expected_value_nan(s):
    return gate_with(s, HEADER + ROW + "nan,0.1\n")


@trial(2)
def gate_margin_inf(s):
    return gate_with(s, HEADER + ROW + "20,inf\n")


@trial(2)
def gate_margin_negative(s):
    return gate_with(s, HEADER + ROW + "20,-0.1\n")


@trial(2)
def gate_no_benchmark_column(s):
    return gate_with(s, "name,metric,expected,noise_margin\n" + ROW + "20,0.1\n")


@trial(0)
def gate_byte_order_mark(s):
    return gate_with(s, "\ufeff" + HEADER + ROW + "20,0.9\n")


@trial(2)
def gate_report_into_missing_folder(s):
    return gate_with(s, HEADER + ROW + "20,0.9\n", "--report", s.at("no", "such", "report.md"))


@trial(2)
def gate_init_into_missing_folder(s):
    return s.call(s.argv("gate", "--machine", RECORDED, "--init", s.at("no", "such", "expected.csv")))


@trial(2)
def table_unknown_machine(s):
    return s.call(s.argv("table", "--machine", "no-such-machine"))


@trial(0)
def table_newest_build_ignores_file_times(s):
    """``touch`` on the older build's results file must not change which build is the newest."""
    first = s.call(s.argv("table", "--machine", RECORDED))[1]
    os.utime(s.results_file(), None)
    later = s.call(s.argv("table", "--machine", RECORDED))
    return later[0], f"{later[1]} [same build as before touch: {'yes' if first == later[1] else 'NO'}]"


# -- Ctrl-C at each step, and two runs at once ----------------------------------------------

def interrupt_at(s, step, *args):
    """SIGINT to the run's process group (a terminal's Ctrl-C) as soon as it prints step ``step``."""
    proc = subprocess.Popen(s.run_argv(*args), env=s.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith(f"[{step}/5]") or (step == "benchmarking" and "Benchmarking" in line):
            os.killpg(proc.pid, signal.SIGINT)
            break
    out, err = proc.communicate()
    return proc.returncode, message(out, err)


def interruption(step, *args):
    def run(s):
        if args:
            s.run()
            s.before = s.fingerprint()
        return interrupt_at(s, step, *args)
    run.__name__ = f"run_ctrl_c_at_step_{step}" + ("_over_recorded_figures" if args else "")
    return trial(130, "interrupted")(run)


for _step in (1, 2, 3, 4, "benchmarking", 5):
    interruption(_step)
interruption("benchmarking", "--replace")


@trial((0, 2), [f"results/{NEW}/*", "html/*", LISTING])
def run_two_at_once(s):
    procs = [subprocess.Popen(s.run_argv(), env=s.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate() for p in procs]
    statuses = sorted(p.returncode for p in procs)
    return tuple(statuses), " / ".join(message(o, e) for o, e in outs if message(o, e).startswith("error"))


@trial(2, [f"results/{NEW}/*", LISTING])
def run_while_a_killed_runner_leaves_asv_running(s):
    """The runner killed (SIGKILL, alone) while asv benchmarks: asv still holds the lock, so a new
    run is refused until it has written its results."""
    first = subprocess.Popen(s.run_argv(), env=s.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             start_new_session=True)
    for line in first.stdout:
        if "Benchmarking" in line:
            break
    first.kill()
    first.wait()
    threading.Thread(target=first.stdout.read, daemon=True).start()  # asv goes on writing to it
    status, text = s.run("--replace")
    deadline = time.time() + 600
    while group_running(first.pid) and time.time() < deadline:  # the orphaned asv, still writing
        time.sleep(0.5)
    return status, text


def group_running(pgid):
    """Whether a process of group ``pgid`` still runs (zombies, unreaped here, do not count)."""
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


# -- running them ---------------------------------------------------------------------------

def changed(before, after):
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def truthful(text, changes):
    """Whether an interruption's message says what changed: nothing, or the files, and the dashboard."""
    results = [c for c in changes if not c.startswith("html/")]
    figures = [c for c in results if os.path.basename(c) not in ("machine.json", "benchmarks.json", "builds.json")]
    said_none = "no figures were recorded" in text
    html_kept = "is the previous one" in text
    return (said_none == (not figures) and all(r in text for r in results)
            and html_kept == (not any(c.startswith("html/") for c in changes)))


def verdict(status, expected, may_change, text, changes):
    if may_change == "interrupted":
        return status == expected and truthful(text, changes)
    return status == expected and all(any(fnmatch.fnmatch(c, g) for g in may_change) for c in changes)


def main(args):
    python = args.python
    chosen = [t for t in TRIALS if not args.only or args.only in t[0]]
    print(f"{len(chosen)} trials, each on a scratch copy of {ROOT}; python {python}", flush=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="trials-") as top:
        for number, (name, func, expected, may_change) in enumerate(chosen, 1):
            s = Scratch(os.path.join(top, str(number)), python)
            s.before = s.fingerprint()
            start = time.perf_counter()
            status, text = func(s)
            text = text.replace(s.path, "<scratch>")
            changes = changed(s.before, s.fingerprint())
            good = verdict(status, expected, may_change, text, changes)
            failed += not good
            html = [c for c in changes if c.startswith("html/")]
            shown = ", ".join([c for c in changes if c not in html] + ([f"html/ ({len(html)} files)"] if html else []))
            print(f"{'ok  ' if good else 'FAIL'} {name}: exit {status} (documented {expected}); "
                  f"{time.perf_counter() - start:.0f} s; changed: {shown or 'nothing'}\n       {text}", flush=True)
    print(f"{len(chosen) - failed} of {len(chosen)} trials fail safe", flush=True)
    return 1 if failed else 0
