"""`dlbench solve-depth`: the integer setting that brings a model closest to a parameter budget."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import DataDirOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output, Table


def solve_depth(
    model: str = typer.Argument(..., help="Model whose setting to solve, e.g. mlp."),
    solve: str = typer.Option(
        "depth", "--solve", help="Integer setting to solve: depth, width, kernel_size..."
    ),
    target: int = typer.Option(None, "--target", help="Target parameter count."),
    target_model: str = typer.Option(None, "--target-model", help="Match this model's count instead."),
    target_sets: list[str] = typer.Option(
        None, "--target-set", help="Setting of the target model (repeatable)."
    ),
    sets: list[str] = SetOpt,
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset whose shape and classes to use."),
    no_bias: bool = typer.Option(False, "--no-bias", help="Count weights only, as hand formulas usually do."),
    minimum: int = typer.Option(1, "--min", help="Smallest value to consider."),
    data_dir: Path = DataDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Find the value of one setting whose parameter count is closest to a target."""
    from dlbench.analysis.params import build_meta, count_parameters, input_for
    from dlbench.analysis.solve import solve as run_solve
    from dlbench.errors import UsageError
    from dlbench.models import get_model_spec
    from dlbench.settings import canon_key, parse_assignments

    if (target is None) == (target_model is None):
        raise UsageError("give exactly one of --target N or --target-model MODEL")
    spec = get_model_spec(model)
    shape, classes, ds_name = input_for(spec, dataset, data_dir)
    settings = {k: v[0] for k, v in parse_assignments(sets, allow_lists=False).items()}
    key = canon_key(solve)
    if target_model:
        tspec = get_model_spec(target_model)
        tsettings = {k: v[0] for k, v in parse_assignments(target_sets, allow_lists=False).items()}
        target = count_parameters(build_meta(tspec, shape, classes, tsettings), bias=not no_bias)[0]
    sol = run_solve(model, key, target, shape, classes, settings, bias=not no_bias, minimum=minimum)
    result = {
        "setting": sol.setting,
        "value": sol.value,
        "params": sol.params,
        "target": sol.target,
        "rel_diff": sol.rel_diff,
        "neighbours": [vars(c) for c in sol.below + sol.above],
        "dataset": ds_name,
        "bias": not no_bias,
    }
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
    what = f"{target_model} ({target:,} parameters)" if target_model else f"{target:,} parameters"
    counted = "weights only" if no_bias else "weights and biases"
    output = Output(fmt)
    output.note(
        f"[bold]{model}[/] on {ds_name}: {key} = [bold green]{sol.value}[/] gives {sol.params:,} parameters, "
        f"{sol.rel_diff:+.2%} from {what} ({counted}; {sol.evaluations} models counted)",
        markup=True,
    )
    output.result(result, Table(rows, highlight=len(sol.below)))
