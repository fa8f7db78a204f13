"""Parameter counts, as recorded: each run's ``params``, ``trainable`` and ``macs`` (per image), one table per
model and input shape, then the tables recorded by `dlbench count-params`. No model is built here."""

from __future__ import annotations

import json
import math

from dlbench.commandline import CommandLine
from dlbench.config import TrainConfig
from dlbench.report.blocks import Command, Heading, P, Table
from dlbench.settings import format_value
from dlbench.sweep.study import Study


def params_section(studies: list[Study], runs: dict[str, dict], counts: list[dict]) -> list:
    """Blocks for the runs of ``studies`` found in ``runs`` and the recorded count tables ``counts``."""
    blocks: list = [Heading(2, "Parameter counts")]
    groups = _groups(studies, runs)
    if groups:
        blocks.append(
            P(
                "From each run's record: parameters, trainable parameters and MACs per image "
                "(- where the dlbench that trained the run did not record them, or where the forward pass "
                "fails on the meta device; `count-params` says why)."
            )
        )
    for (model, dataset, shape, classes, _), g in sorted(groups.items(), key=lambda kv: kv[0]):
        blocks.append(Heading(3, f"{model} on {dataset} ({'x'.join(map(str, shape))}, {classes} classes)"))
        blocks += _group_blocks(model, dataset, g)
    if counts:
        blocks.append(P("Tables recorded by `dlbench count-params`, oldest first."))
    for c in sorted(counts, key=lambda c: str(c.get("created", ""))):
        blocks += [Heading(3, str(c["title"])), Table(list(c["columns"]), list(c["rows"]))]
        if any(r.get("macs") is None for r in c["rows"]) and "macs" in c["columns"]:
            blocks.append(P(_NO_MACS))
        if c.get("command"):
            blocks.append(Command(str(c["command"])))
    return blocks


_NO_MACS = (
    "A - under macs: the forward pass fails at this input, most often because it is too small for the model; "
    "the command below prints why and the smallest square input that works (then count there with --input-size)."
)


def _groups(studies: list[Study], runs: dict[str, dict]) -> dict[tuple, dict]:
    """Runs grouped by model, dataset, input shape and classes; per group the settings the user gave."""
    from dlbench.data import get_dataset

    groups: dict[tuple, dict] = {}
    for study in studies:
        given = set(study.fixed_values("settings")) | {a.name for a in study.axes if a.kind == "setting"}
        for key in study.keys:
            if key not in runs:
                continue
            run = runs[key]
            c = TrainConfig.from_json(run["config"])
            spec = get_dataset(c.dataset)
            info = spec.info(None, c.dataset_options)
            shape_opts = _shape_options(spec, c.dataset_options)
            gkey = (
                c.model,
                c.dataset,
                tuple(info.input_shape),
                info.num_classes,
                json.dumps(shape_opts, default=str),
            )
            g = groups.setdefault(gkey, {"given": set(), "shape_opts": shape_opts, "rows": {}})
            g["given"] |= given
            ident = (json.dumps(c.model_settings, sort_keys=True, default=str), c.options.finetune)
            g["rows"].setdefault(ident, (c.model_settings, c.options.finetune, run))
    return groups


def _group_blocks(model: str, dataset: str, g: dict) -> list:
    entries = list(g["rows"].values())  # in the studies' order (studies by name, then their trials)
    settings = [s for s, _, _ in entries]
    varying = sorted({k for s in settings for k in s if any(s2.get(k) != s.get(k) for s2 in settings)})
    finetunes = len({f for _, f, _ in entries}) > 1
    rows = [
        {
            **{k: format_value(s.get(k)) for k in varying},
            **({"finetune": f} if finetunes else {}),
            "params": _count(run.get("params")),
            "trainable": _count(run.get("trainable")),
            "macs": _count(run.get("macs")),
        }
        for s, f, run in entries
    ]
    blocks: list = []
    held = {k: v for k, v in settings[0].items() if k not in varying}
    if held:
        blocks.append(
            P("Settings: " + ", ".join(f"{k}={format_value(v)}" for k, v in sorted(held.items())) + ".")
        )
    blocks.append(
        Table(varying + (["finetune"] if finetunes else []) + ["params", "trainable", "macs"], rows)
    )
    shown = sorted(set(varying) | g["given"])
    blocks += [Command(c) for c in _count_commands(model, dataset, settings, shown, g["shape_opts"])]
    return blocks


def _count(value):
    """A recorded count as an int (None when absent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _shape_options(spec, options: dict) -> dict:
    """The dataset options that change the input shape or the classes (only those matter to a count)."""
    base = spec.info(None, {})
    out = {}
    for k, v in sorted(options.items()):
        if v == spec.defaults.get(k):
            continue
        try:
            info = spec.info(None, {k: v})
        except Exception:  # an option that needs the data folder to resolve: not a shape option
            continue
        if (info.input_shape, info.num_classes) != (base.input_shape, base.num_classes):
            out[k] = v
    return out


def _count_commands(
    model: str, dataset: str, settings: list[dict], shown: list[str], shape_opts: dict
) -> list[str]:
    """`dlbench count-params` lines that count these rows: one line when the rows are a full grid."""

    def line(sets: dict[str, list[str]]) -> str:
        cmd = CommandLine("count-params").arg(model).opt("--dataset", dataset)
        cmd.opts("--set", [f"{k}={','.join(v)}" for k, v in sets.items()])
        return cmd.opts("--dataset-opt", [f"{k}={format_value(v)}" for k, v in shape_opts.items()]).text

    settings = list({json.dumps(s, sort_keys=True, default=str): s for s in settings}.values())  # once each
    values = {k: list(dict.fromkeys(format_value(s.get(k)) for s in settings)) for k in shown}
    if math.prod(len(v) for v in values.values()) == len(settings):
        return [line(values)]
    return [line({k: [format_value(s.get(k))] for k in shown}) for s in settings]
