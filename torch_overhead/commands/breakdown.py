"""Where the overhead lives: every layer's median per seed variant, as a table and a PNG.

``python -m torch_overhead breakdown --machine nvidia-h200`` reads that machine's newest
results and, for each valid seed variant, sets the headline (Inductor) beside the layers
beneath it: the floor (CUDA graph replay, raw Triton launch), eager PyTorch, Dynamo
alone, Dynamo + AOTAutograd, and the Inductor variants (CUDA graphs, C++ wrapper). It
prints each median, its ratio to the CUDA-graph floor and the Inductor/eager ratio, and
draws the same as grouped bars (``docs/breakdown-MACHINE.png`` by default).

``--clock synchronized`` does the same for the CUDA-only clock that waits for the device
around each call (every benchmark's ``..._synchronized`` twin): host time says what the
CPU spends per call, synchronized time what a caller waiting for the result sees.

``--metric instructions`` does the same in instructions per call on the calling thread
(``instruction_count``'s headline and per-layer counts, ``run --slow``): the deterministic
answer to "which layer adds the overhead" (``docs/breakdown-MACHINE-instructions.png``).
"""

import itertools
import os
import sys

from ..lib.layers import LAYERS
from ..lib.recorded import RecordedResultsError, build_label, result_by_variant, results_of_build
from ..lib.suite import COUNTS, LAYER_COUNTS, settings

HEADLINE = settings.HEADLINE

SYNCHRONIZED = "_synchronized"
CLOCKS = {"host": "host time", "synchronized": "synchronized: device waited for around each call"}


def collect(results, clock="host"):
    """``{variant: {label: seconds}}`` for the headline's valid variants; a layer without
    a figure for a variant (skipped, failed, not run) is left out of that variant."""
    suffix = SYNCHRONIZED if clock == "synchronized" else ""
    if HEADLINE + suffix not in results.get_all_result_keys():
        return {}
    headline = result_by_variant(results, HEADLINE + suffix)
    table = {v: {} for v in headline}
    for label, name, _ in LAYERS:
        name += suffix
        if name not in results.get_all_result_keys():
            continue
        per_variant = result_by_variant(results, name)
        for variant in table:
            value = per_variant.get(variant, per_variant.get(()))  # the floor has no variants
            if value is None and label == "eager":
                # eager has no dynamic shapes (skipped as a duplicate): one figure for both
                value = per_variant.get(variant[:3] + (False,))
            if value is not None:
                table[variant][label] = value
    return table


def collect_counts(results):
    """``{variant: {label: instructions per call}}``, as ``collect`` for the counts: the headline's
    from ``InstructionCount``, the other layers' from ``LayerInstructionCount`` (first parameter:
    the layer), the floor's (counted once, as the base variant) set beside every variant."""
    keys = results.get_all_result_keys()
    if COUNTS not in keys:
        return {}
    table = {v: {"Inductor": n} for v, n in result_by_variant(results, COUNTS).items()}
    if LAYER_COUNTS not in keys:
        return table
    label_of = {layer: label for label, _, layer in LAYERS}
    params = results.get_result_params(LAYER_COUNTS)
    counted = {}
    for combo, value in zip(itertools.product(*params), results.get_result_value(LAYER_COUNTS, params)):
        if value is not None and value == value:  # recorded, not skipped
            counted[(combo[0].strip("'\""), tuple(p == "True" for p in combo[1:]))] = value
    base = (False,) * len(settings.SEED_PARAM_NAMES)
    for variant, row in table.items():
        for layer, label in label_of.items():
            for key in ((layer, variant), (layer, variant[:3] + (False,)) if layer == "eager" else None,
                        (layer, base) if layer in settings.FLOOR_LAYERS else None):
                if key in counted:
                    row[label] = counted[key]
                    break
    return table


def text(table, clock="host"):
    """A Markdown table; ``clock`` "instructions" for counts."""
    counts = clock == "instructions"
    labels = [label for label, _, _ in LAYERS if any(label in row for row in table.values())]
    unit = "instructions per call (calling thread)" if counts else f"us per call ({CLOCKS[clock]})"
    lines = [f"{unit}; (xN) = ratio to the CUDA graph replay floor", "",
             "| variant | " + " | ".join(labels) + " | inductor/eager |",
             "|" + " --- |" * (len(labels) + 2)]
    for variant, row in table.items():
        floor = row.get("CUDA graph replay")
        cells = []
        for label in labels:
            if label not in row:
                cells.append("n/a")
                continue
            ratio = f" (x{row[label] / floor:.1f})" if floor else ""
            cells.append((f"{row[label]:,.0f}" if counts else f"{row[label] * 1e6:.1f}") + ratio)
        ind_eager = f"{row['Inductor'] / row['eager']:.2f}" if "eager" in row and "Inductor" in row else "n/a"
        lines.append(f"| {settings.flags_name(variant)} | " + " | ".join(cells) + f" | {ind_eager} |")
    return "\n".join(lines) + "\n"


def draw(table, title, path, clock="host"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, _, _ in LAYERS if any(label in row for row in table.values())]
    scale, unit = (1e-3, "thousand instructions per call") if clock == "instructions" else \
        (1e6, f"microseconds per call ({clock} clock)")
    variants = list(table)
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(variants)), 5))
    for i, label in enumerate(labels):
        xs = [j + i * width for j, v in enumerate(variants) if label in table[v]]
        ys = [table[v][label] * scale for v in variants if label in table[v]]
        ax.bar(xs, ys, width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(variants))])
    ax.set_xticklabels([settings.flags_name(v) for v in variants], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(args):
    try:
        results = results_of_build(args.project_root, args.machine, args.build)
        label = build_label(args.project_root, results)
    except RecordedResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    what = "instructions" if args.metric == "instructions" else args.clock
    table = collect_counts(results) if what == "instructions" else collect(results, args.clock)
    if not table:
        hint = {"host": "record them with `python -m torch_overhead run`",
                "synchronized": "the synchronized clock is CUDA only; try --clock host",
                "instructions": "record them with `python -m torch_overhead run --slow`"}[what]
        figure = "instruction count" if what == "instructions" else f"{what}-clock figure"
        which = "newest results" if args.build is None else "results"
        print(f"error: {args.machine}'s {which} ({label}) have no {figure} "
              f"for the headline; {hint}", file=sys.stderr)
        return 2
    suffix = "" if what == "host" else f"-{what}"
    output = args.output or os.path.join(args.project_root, "docs", f"breakdown-{args.machine}{suffix}.png")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    device = results.env_vars.get(settings.DEVICE_ENV_VAR, "?")
    kind = "instructions" if what == "instructions" else f"{what} clock"
    draw(table, f"add1 per layer, {kind}: {args.machine} ({device}), {label}", output, what)
    print(text(table, what), end="")
    print(f"picture: {output}")
    return 0
