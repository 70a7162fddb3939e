"""The asv machine a run records under: a name that stays inside ``results/``, and the facts first recorded for it.

asv uses the machine name as a folder name under ``results/`` (``../x`` writes outside it),
and ``asv run`` copies the machine's facts from ``~/.asv-machine.json`` over
``results/NAME/machine.json`` on every run, so the last host to run would rewrite the
record of the machine that produced the earlier results.
"""

import json
import os
import re

from asv.machine import Machine, MachineCollection

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
# Facts that decide the figures: a host differing in them is another machine. The others
# (kernel build, memory size) vary between cloud hosts of one type.
HARDWARE = ("arch", "cpu", "num_cpu")


class MachineError(RuntimeError):
    pass


def check_name(name):
    if not _NAME.match(name) or name in (".", ".."):
        raise MachineError(f"--machine {name!r}: a machine name is letters, digits, '.', '_' and '-' "
                           "(it names a folder under results/), not a path")


def register(results_dir, name):
    """Store the facts ``asv run`` will record for machine ``name``: this host's, or, when
    the machine is already recorded, the recorded ones. Returns a note naming the facts of
    this host that differ (or None); raises MachineError when the hardware differs."""
    host = {**Machine.get_defaults(), "machine": name}
    path = os.path.join(results_dir, name, "machine.json")
    if not os.path.exists(path):
        MachineCollection.save(name, host)
        return None
    try:
        with open(path, encoding="utf-8") as f:
            recorded = {k: v for k, v in json.load(f).items() if k != "version"}
    except (OSError, ValueError, AttributeError) as err:
        raise MachineError(f"{path} is unreadable ({err}); restore it with `git checkout -- {path}`") from err
    differ = [k for k in host if str(recorded.get(k)) != str(host[k])]
    if any(k in HARDWARE for k in differ):
        raise MachineError(
            f"machine {name!r} was recorded on {_describe(recorded)}, this host is {_describe(host)}; "
            "record this host under another --machine name")
    MachineCollection.save(name, recorded)
    if differ:
        return (f"this host's {', '.join(differ)} differ from machine {name!r}'s recorded facts; "
                f"{path} is kept as recorded")
    return None


def _describe(facts):
    return f"{facts.get('cpu')} x{facts.get('num_cpu')} ({facts.get('arch')})"
