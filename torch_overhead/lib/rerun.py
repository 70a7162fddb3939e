"""Which recorded figures a new run would replace.

asv merges a run into the results file of the same build, machine and environment and
overwrites every variant it runs, without a word: a ``--quick`` run (one sample) would
silently replace a full run's median. The runner asks first (``run --replace``).
"""

import glob
import itertools
import os
import re

from asv.results import Results

from .recorded import variant_name


def replaced(results_dir, machine, commit, env_name, patterns):
    """``(variants, full)``: the variants recorded for this build, machine and environment that
    ``patterns`` select (as ``asv run --bench``: searched in ``name(params)``; none selects all),
    and whether any of them came from a full run (more than one sample; ``--quick`` takes one).
    The results files were checked readable before (``recorded.check``)."""
    variants, full = [], False
    for path in sorted(glob.glob(os.path.join(results_dir, machine, "*.json"))):
        if os.path.basename(path) == "machine.json":
            continue
        results = Results.load(path)
        if results.commit_hash != commit or results.env_name != env_name:
            continue
        for name in results.get_all_result_keys():
            params = results.get_result_params(name)
            stats = results.get_result_stats(name, params)
            for combo, value, stat in zip(itertools.product(*params), results.get_result_value(name, params), stats):
                variant = variant_name(name, combo)
                if value is None or value != value or (patterns and not any(re.search(p, variant) for p in patterns)):
                    continue  # failed, skipped, or not selected: no figure to lose
                variants.append(variant)
                full = full or (stat or {}).get("repeat", 1) > 1
    return variants, full
