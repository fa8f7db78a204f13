"""`count-params` and `solve-depth` as library calls: the tables they print; a count table carries the
shell-quoted command that prints it again, so a recorded table can be reproduced from the report."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.commandline import CommandLine


@dataclass
class CountTable:
    """Parameters, trainable parameters and MACs, one row per combination of setting values; with a depth,
    the layers of the (single) model too."""

    title: str
    command: str
    columns: list[str]
    rows: list[dict]
    layers_title: str = ""
    layers: list[dict] = field(default_factory=list)
    notes: list[str] = field(
        default_factory=list
    )  # why a row has no MACs, and the input size that gives them


def count_command(
    model: str, dataset, grid: dict, dataset_options: dict, depth: int, bias: bool, data_dir, input_size=None
) -> str:
    """The `dlbench count-params` line that prints this table again."""
    cmd = CommandLine("count-params").arg(model).opt("--dataset", dataset).opt("--input-size", input_size)
    cmd.opts("--set", [f"{k}={','.join(map(str, v))}" for k, v in grid.items()])
    cmd.opts("--dataset-opt", [f"{k}={v}" for k, v in sorted(dataset_options.items())])
    cmd.opt("--depth", depth or None).flag("--no-bias", not bias)
    return cmd.opt("--data-dir", Path(data_dir).resolve() if data_dir is not None else None).text


def count_table(
    model: str,
    dataset: str | None = None,
    grid: dict[str, list] | None = None,
    dataset_options: dict | None = None,
    *,
    depth: int = 0,
    bias: bool = True,
    data_dir: Path | None = None,
    input_size: int | None = None,
) -> CountTable:
    """Count ``model`` on ``dataset`` (default: its own) for every combination of ``grid`` values, on the meta
    device (no weights allocated).

    Args:
        model: Registry name, e.g. ``mlpmixer`` or ``tv:resnet50``.
        dataset: Whose input shape and classes to use.
        grid: Setting name -> values (raw strings or values), e.g. ``{"patch_size": ["2", "4"]}``.
        dataset_options: Dataset options (one value each).
        depth: Also break the count down by layer, down to this nesting depth (one combination only).
        bias: Count bias vectors too.
        data_dir: ``--data-dir`` as given (None: the default folder).
        input_size: Count on N x N inputs (the dataset's channels and classes) instead of the dataset's size.

    A row whose forward pass fails has ``macs`` None and a line in ``notes`` saying why and, when the input is
    too small for the model, the smallest square input that works.

    Raises:
        UsageError: ``depth`` with more than one combination of values; ``input_size`` out of range.
    """
    from dlbench.analysis.params import build_meta, count_parameters, input_for, layer_summary, macs_or_error
    from dlbench.config import MAX_INPUT_SIZE
    from dlbench.errors import UsageError
    from dlbench.models import get_model_spec

    if input_size is not None and not 1 <= input_size <= MAX_INPUT_SIZE:
        raise UsageError(
            f"--input-size must be between 1 and {MAX_INPUT_SIZE} (pixels a side), got {input_size}"
        )
    grid, dataset_options = dict(grid or {}), dict(dataset_options or {})
    spec = get_model_spec(model)
    shape, classes, ds_name = input_for(spec, dataset, data_dir, dataset_options)
    if input_size is not None:
        shape = (shape[0], input_size, input_size)
    combos = list(itertools.product(*grid.values()))
    if depth and len(combos) > 1:
        raise UsageError("--depth prints one model's layers: give one value per setting")
    rows, notes = [], []
    for combo in combos:
        resolved = spec.resolve(dict(zip(grid, combo, strict=True)))
        net = build_meta(spec, shape, classes, resolved)
        total, trainable = count_parameters(net, bias=bias)
        macs, error = macs_or_error(net, shape)
        rows.append({**{k: resolved[k] for k in grid}, "params": total, "trainable": trainable, "macs": macs})
        if error:
            what = ", ".join(f"{k}={v}" for k, v in zip(grid, combo, strict=True))
            note = _no_macs_note(spec, shape, classes, resolved, error, what)
            notes += [] if note in notes else [note]
    table = CountTable(
        f"{model} on {ds_name} ({'x'.join(map(str, shape))}, {classes} classes)",
        count_command(model, dataset, grid, dataset_options, depth, bias, data_dir, input_size),
        [*grid, "params", "trainable", "macs"],
        rows,
        notes=notes,
    )
    if depth:
        table.layers_title = f"Layers of {model} (depth {depth})"
        table.layers = [
            {
                "layer": r.name,
                "type": r.type,
                "output": "x".join(map(str, r.output_shape or ())) or "-",
                "params": r.params,
            }
            for r in layer_summary(net, shape, depth)
        ]
    return table


def _no_macs_note(spec, shape, classes, settings, error: str, what: str) -> str:
    """Why a row's MACs are ``-``: the input is too small (and the smallest that works), or the error itself."""
    from dlbench.analysis.params import smallest_side

    channels, side = shape[0], min(shape[1:])
    at = f"{spec.name}{f' ({what})' if what else ''} has no MACs at {'x'.join(map(str, shape))}"
    smallest = smallest_side(spec, channels, classes, settings, failed=side)
    if smallest is None:
        return f"{at}: its forward pass fails on the meta device ({error})"
    return (
        f"{at}: the input is too small for it; the smallest square input that works is {smallest}x{smallest} "
        f"(count it there with --input-size {smallest})"
    )


@dataclass
class SolveTable:
    """The solved value with its neighbours (``rows``; ``best`` is the index of the solution) and a one-line
    ``summary``."""

    solution: object  # analysis.solve.Solution
    dataset: str
    bias: bool
    summary: str
    rows: list[dict]
    best: int

    def as_dict(self) -> dict:
        sol = self.solution
        return {
            "setting": sol.setting,
            "value": sol.value,
            "params": sol.params,
            "target": sol.target,
            "rel_diff": sol.rel_diff,
            "neighbours": [vars(c) for c in sol.below + sol.above],
            "dataset": self.dataset,
            "bias": self.bias,
            "searched": list(sol.searched),
            "exhaustive": sol.exhaustive,
            "ties": sol.ties,
        }


def solve_table(
    model: str,
    setting: str,
    *,
    target: int | None = None,
    target_model: str | None = None,
    target_settings: dict | None = None,
    settings: dict | None = None,
    dataset: str | None = None,
    bias: bool = True,
    minimum: int = 1,
    data_dir: Path | None = None,
) -> SolveTable:
    """The value of integer ``setting`` of ``model`` whose parameter count is closest to ``target``, or to the
    count of ``target_model`` (with ``target_settings``) on the same input.

    Raises:
        UsageError: Not exactly one of ``target`` and ``target_model``.
        InvalidSettingError: ``setting`` is not an integer setting of ``model``, or no value reaches the target.
    """
    from dlbench.analysis.params import build_meta, count_parameters, input_for
    from dlbench.analysis.solve import solve
    from dlbench.errors import UsageError
    from dlbench.models import get_model_spec
    from dlbench.settings import canon_key

    if (target is None) == (target_model is None):
        raise UsageError("give exactly one of --target N or --target-model MODEL")
    settings, target_settings = dict(settings or {}), dict(target_settings or {})
    shape, classes, ds_name = input_for(get_model_spec(model), dataset, data_dir)
    key = canon_key(setting)
    if target_model:
        net = build_meta(get_model_spec(target_model), shape, classes, target_settings)
        target = count_parameters(net, bias=bias)[0]
    sol = solve(model, key, target, shape, classes, settings, bias=bias, minimum=minimum)
    what = f"{target_model} ({target:,} parameters)" if target_model else f"{target:,} parameters"
    summary = (
        f"{model} on {ds_name}: {key} = {sol.value} gives {sol.params:,} parameters, {sol.rel_diff:+.2%} from "
        f"{what} ({'weights and biases' if bias else 'weights only'}; {sol.evaluations} models counted)\n"
        f"searched: {sol.describe()}"
    )
    rows = [
        {
            key: c.value,
            "params": c.params,
            "diff": c.params - target,
            "rel_diff": f"{c.rel_diff:+.2%}",
            "best": "<- best" if c.value == sol.value else "",
        }
        for c in sol.below + [sol] + sol.above
    ]
    return SolveTable(sol, ds_name, bias, summary, rows, len(sol.below))
