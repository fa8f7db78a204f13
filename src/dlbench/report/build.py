"""`dlbench report`: one Markdown or HTML file that writes up everything in the cache.

The report is built in two steps. :func:`collect` reads the cache (only through :class:`~dlbench.cache.Store`
and the figure index) and produces a list of blocks: headings, paragraphs, tables, images (PNG bytes drawn
here with matplotlib) and commands. :func:`render_markdown` and :func:`render_html` turn the blocks into text.
Markdown links its images from a folder beside the report (``report.md`` -> ``report_files/``); HTML
embeds them as base64 data URIs, so one file is the whole report.

Determinism: sweeps are ordered by name, figures by kind, time and path, and the only time in the body is the
newest ``created`` stamp among the results shown, so the same cache always gives the same bytes.

Speed: the ``runs`` rows are read once; the summary tables are computed from those rows (a read-through view
stands in for the store); per-epoch, per-step and gradient tables are read only for the trials drawn (at most
``MAX_CURVES`` per sweep), predictions only for the best and worst trial.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from dlbench.errors import DlbenchError, UsageError
from dlbench.formatting import fmt_cell
from dlbench.paths import safe_name
from dlbench.report.plots import (
    curves_png,
    grad_norms_png,
    pick_curves,
    pyplot,
    step_loss_png,
    to_png,
)

SAMPLES = 5  # test images in the best-vs-worst strip
IMPORTANT_OPTIONS = (
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "batch_size",
    "epochs",
    "label_smoothing",
    "augment",
    "normalize",
    "val_split",
    "seed",
    "precision",
)
FORMATS = ("markdown", "html")


# ----------------------------------------------------------------------------------------------------
# blocks: the report model, independent of the output format


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    parts: list[tuple[str, str]]  # (style, text); style: "text" | "code" | "bold"


@dataclass
class Table:
    columns: list[str]
    rows: list[dict]
    best: int | None = None  # index of the row to mark


@dataclass
class Image:
    name: str  # file name in the figures folder (already safe)
    png: bytes
    alt: str
    caption: str = ""


@dataclass
class Command:
    text: str


@dataclass
class Report:
    title: str
    header: str
    blocks: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def images(self) -> list[Image]:
        return [b for b in self.blocks if isinstance(b, Image)]


def P(*parts) -> Para:
    """``P("text ", ("code", "x"), " more")``: plain strings are text."""
    return Para([p if isinstance(p, tuple) else ("text", p) for p in parts])


# ----------------------------------------------------------------------------------------------------
# reading the cache


class _RunsView:
    """Stands in for a Store where the summary helpers only ask ``has``/``get``: answers from ``runs`` rows
    read once, instead of reading (and globbing for) one file per trial per call."""

    def __init__(self, store, rows: dict[str, dict]):
        self._store = store
        self._rows = rows
        self.root = store.root

    def has(self, key: str) -> bool:
        return key in self._rows

    def get(self, key: str) -> dict:
        return self._rows[key]

    def table(self, name: str, keys: list[str]) -> pd.DataFrame:
        return self._store.table(name, keys)


def _since_stamp(since: str | None) -> str | None:
    if not since:
        return None
    try:
        return datetime.fromisoformat(since.strip()).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise UsageError(
            f"--since must be an ISO date such as 2025-01-31 or 2025-01-31T14:00, got '{since}'"
        ) from None


def _plain(value):
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def _row_dicts(df: pd.DataFrame) -> dict[str, dict]:
    rows = {}
    for r in df.to_dict("records"):
        rows[r["key"]] = {
            k: (None if isinstance(v, float) and math.isnan(v) else _plain(v)) for k, v in r.items()
        }
    return rows


@dataclass
class Selection:
    sweeps: list[str] | None = None
    model: str | None = None
    dataset: str | None = None
    since: str | None = None

    def describe(self) -> str:
        parts = [f"--sweep {s}" for s in self.sweeps or []]
        parts += [f"--model {self.model}"] if self.model else []
        parts += [f"--dataset {self.dataset}"] if self.dataset else []
        parts += [f"--since {self.since}"] if self.since else []
        return " ".join(parts)


def collect(store, selection: Selection | None = None, data_dir: Path | None = None) -> Report:
    """Read the cache and build the report's blocks (figures drawn to PNG bytes, nothing written).

    Args:
        store: The :class:`~dlbench.cache.Store` to read.
        selection: Filters: sweep names, model, dataset, ``since`` (ISO date; runs created from then on).
        data_dir: Where datasets live, for the test images of the best-vs-worst comparison.

    Raises:
        UsageError: The cache is empty, or nothing in it matches the filters.
    """
    sel = selection or Selection()
    since = _since_stamp(sel.since)
    runs = store.runs()
    figures = store.figures()
    definitions = store.sweeps()
    if runs.empty and not len(figures):
        raise UsageError(f"no results in the cache at {store.root}; run `dlbench sweep ...` first")
    rows = _row_dicts(runs) if len(runs) else {}

    # -- which sweeps, and which of their trials
    by_name = {d["name"]: d for d in definitions}
    if sel.sweeps:
        from dlbench.errors import UnknownNameError

        for name in sel.sweeps:
            if name not in by_name:
                raise UnknownNameError(
                    "sweep", name, list(by_name), hint="see the names `dlbench sweep` printed"
                )
    chosen = []
    for name in sorted(by_name):
        d = by_name[name]
        if sel.sweeps and name not in sel.sweeps:
            continue
        if sel.model and d.get("model") != sel.model:
            continue
        if sel.dataset and d.get("dataset") != sel.dataset:
            continue
        trials = [
            t
            for t in d["trials"]
            if t["key"] in rows and (since is None or rows[t["key"]]["created"] >= since)
        ]
        if not trials:
            continue
        chosen.append({**d, "trials": trials, "_all_trials": len(d["trials"])})

    # -- which recorded figures
    fig_rows = _select_figures(figures, sel, since, {d["model"] for d in chosen})
    if not chosen and not fig_rows:
        what = sel.describe()
        if what:
            raise UsageError(f"nothing in the cache at {store.root} matches {what}; see `dlbench runs`")
        raise UsageError(f"no finished sweep in the cache at {store.root}; run `dlbench sweep ...` first")

    view = _RunsView(store, rows)
    in_scope = [t["key"] for d in chosen for t in d["trials"]]
    stamps = [rows[k]["created"] for k in in_scope] + [f["created"] for f in fig_rows]
    n_runs = len(set(in_scope))
    header = (
        f"Results up to {max(stamps)}: {len(chosen)} sweep{'s' * (len(chosen) != 1)}, {n_runs} "
        f"run{'s' * (n_runs != 1)}, {len(fig_rows)} recorded figure{'s' * (len(fig_rows) != 1)}"
    )
    if sel.describe():
        header += f" (filter: {sel.describe()})"
    report = Report("dlbench report", header)
    report.stats = {"sweeps": [d["name"] for d in chosen], "runs": n_runs, "figures": len(fig_rows)}
    names = _FileNames()
    datasets_cache: dict = {}
    for d in chosen:
        report.blocks += _sweep_section(view, d, names, data_dir, datasets_cache)
    if chosen:
        report.blocks += _params_section([rows[k] for k in dict.fromkeys(in_scope)])
    if fig_rows:
        report.blocks += _figures_section(fig_rows, names)
    outside = len(set(rows) - {t["key"] for d in definitions for t in d["trials"]})
    if in_scope:
        report.blocks += _environment_section([rows[k] for k in dict.fromkeys(in_scope)], outside)
    return report


class _FileNames:
    """Unique, safe file names for the figures folder (names come from user-chosen sweep names)."""

    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, stem: str, what: str) -> str:
        base = safe_name(stem)[:80]
        name = f"{base}-{what}.png"
        if name in self.used or base != stem:
            name = f"{base}-{hashlib.sha1(stem.encode()).hexdigest()[:8]}-{what}.png"
        self.used.add(name)
        return name


# ----------------------------------------------------------------------------------------------------
# one sweep


def _sweep_section(view: _RunsView, d: dict, names: _FileNames, data_dir, datasets_cache) -> list:
    from dlbench.config import TrainConfig
    from dlbench.sweep.grid import label
    from dlbench.sweep.summary import summary_rows, trial_frame

    name, model, dataset = d["name"], d["model"], d["dataset"]
    axes = [a["name"] for a in d["axes"]]
    blocks: list = [Heading(2, f"Sweep {name}: {model} on {dataset}")]
    n, total = len(d["trials"]), d["_all_trials"]
    intro = f"{n} trial{'s' * (n != 1)} of {model} on {dataset}"
    intro += (
        f" ({total - n} more in the definition are not in this report: unfinished or filtered out)."
        if n < total
        else "."
    )
    if d.get("repeats", 1) > 1:
        intro += f" Each value combination ran with {d['repeats']} seeds: the table shows mean and std."
    blocks.append(P(intro))

    # what was swept
    blocks.append(Heading(3, "Swept"))
    blocks.append(
        Table(
            ["parameter", "kind", "values"],
            [
                {"parameter": a["name"], "kind": a["kind"], "values": ", ".join(map(str, a["values"]))}
                for a in d["axes"]
            ],
        )
    )

    # what was held fixed: given on the command line, or the resolved defaults of a trial
    trials = trial_frame(view, d)
    first = TrainConfig.from_json(view.get(d["trials"][0]["key"])["config"])
    given = d.get("fixed", {})
    fixed_rows = []
    for kind, values, given_here in (
        ("setting", first.model_settings, given.get("settings", {})),
        ("dataset", first.dataset_options, given.get("dataset_options", {})),
    ):
        for k in sorted(values):
            if k not in axes:
                fixed_rows.append(
                    {
                        "name": k,
                        "kind": kind,
                        "value": _fmt_value(values[k]),
                        "source": "given" if k in given_here else "default",
                    }
                )
    from dlbench.config import train_option_defaults

    defaults = train_option_defaults()
    given_opts = given.get("options", {})
    for k in defaults:
        if k in axes or k == "device":
            continue
        v = getattr(first.options, k)
        if k in IMPORTANT_OPTIONS or k in given_opts or v != defaults[k]:
            fixed_rows.append(
                {
                    "name": k,
                    "kind": "option",
                    "value": _fmt_value(v),
                    "source": "given" if k in given_opts else "default",
                }
            )
    fixed_rows.sort(key=lambda r: r["source"] != "given")  # what the user chose first; stable otherwise
    fixed_rows.append({"name": "device", "kind": "run", "value": first.device_kind, "source": "resolved"})
    blocks.append(Heading(3, "Held fixed"))
    blocks.append(Table(["name", "kind", "value", "source"], fixed_rows))

    # the summary table, exactly the rows and columns `sweep` prints
    rows, columns, best = summary_rows(view, d)
    blocks.append(Heading(3, "Results"))
    blocks.append(Table(columns, rows, best))
    if best is not None:
        b = rows[best]
        blocks.append(
            P(
                "Best by validation accuracy: ",
                ("bold", label({a: b[a] for a in axes})),
                f" (best_val_acc {fmt_cell(b['best_val_acc'], 'acc')}, "
                f"test_acc {fmt_cell(b['test_acc'], 'acc')}).",
            )
        )
    failed = trials[trials["status"] != "ok"]
    for r in failed.to_dict("records"):
        blocks.append(
            P(
                f"Trial {label({a: r[a] for a in axes})}: {r['status']}"
                + (f" ({r['message']})" if r.get("message") else "")
                + "."
            )
        )

    # figures: at most MAX_CURVES trials drawn
    labels = {}
    for r in trials.to_dict("records"):
        lab = label({a: r[a] for a in axes})
        if d.get("repeats", 1) > 1:
            lab += f" (seed {r['repeat']})"
        labels[r["key"]] = lab
    best_key, worst_key = _best_worst(trials, rows, best, axes)
    drawn = pick_curves(list(labels), best_key, worst_key)
    shown = {k: labels[k] + (" (best)" if k == best_key else "") for k in drawn}
    note = ""
    if len(drawn) < len(labels):
        note = (
            f"{len(drawn)} of {len(labels)} trials drawn: the best, the worst and the rest spread evenly "
            "over the sweep's order; the table above lists every trial."
        )
    title = f"{model} on {dataset}: sweep of {', '.join(axes)}"
    keys = list(drawn)
    epochs = view.table("epochs", keys)
    if len(epochs):
        blocks.append(Heading(3, "Training curves"))
        blocks.append(
            Image(names(name, "curves"), curves_png(epochs, shown, title), f"training curves of {name}", note)
        )
    grads = view.table("grads", keys)
    if len(grads):
        blocks.append(Heading(3, "Gradient norms"))
        blocks.append(
            Image(
                names(name, "grad-norms"),
                grad_norms_png(grads, shown, title),
                f"gradient norms of {name}",
                note,
            )
        )
    steps = view.table("steps", keys)
    if len(steps):
        blocks.append(Heading(3, "Per-step training loss"))
        blocks.append(
            Image(
                names(name, "step-loss"), step_loss_png(steps, shown, title), f"per-step loss of {name}", note
            )
        )

    # five test images the best trial got right and the worst got wrong
    blocks.append(Heading(3, "Best against worst on test images"))
    blocks += _samples(view, name, labels, best_key, worst_key, names, data_dir, datasets_cache)

    blocks.append(Heading(3, "Reproduce"))
    command = d.get("command") or ""
    if command:
        blocks.append(Command(command))
    else:
        blocks.append(
            P("The sweep definition records no command; each trial's own command is in `dlbench runs`.")
        )
    return blocks


def _fmt_value(v) -> str:
    from dlbench.settings import format_value

    return format_value(v)


def _best_worst(trials: pd.DataFrame, rows: list[dict], best: int | None, axes: list[str]):
    ok = trials[(trials["status"] == "ok") & trials["best_val_acc"].notna()]
    if best is None or ok.empty:
        return None, None
    b = rows[best]
    mask = pd.Series(True, index=ok.index)
    for a in axes:
        mask &= ok[a].map(lambda v, t=b[a]: v == t)
    cand = ok[mask] if mask.any() else ok
    best_key = cand.sort_values(["best_val_acc", "order"], ascending=[False, True]).iloc[0]["key"]
    worst_key = ok.sort_values(["best_val_acc", "order"], ascending=[True, False]).iloc[0]["key"]
    return best_key, (worst_key if worst_key != best_key else None)


def _samples(view, sweep: str, labels, best_key, worst_key, names, data_dir, datasets_cache) -> list:
    if not best_key or not worst_key:
        return [P("No comparison: the sweep needs two finished trials with different validation accuracy.")]
    preds = view.table("predictions", [best_key, worst_key])
    if preds.empty or not {"index", "label", "pred"} <= set(preds.columns):
        return [P("No comparison: the cache holds no test predictions for these trials.")]
    cols = ["index", "label", "pred", "confidence"]
    both = preds.loc[preds["key"] == best_key, cols].merge(
        preds.loc[preds["key"] == worst_key, cols], on="index", suffixes=("_best", "_worst")
    )
    picked = both[(both["pred_best"] == both["label_best"]) & (both["pred_worst"] != both["label_best"])]
    if picked.empty:
        return [P("No test image was classified correctly by the best trial and wrongly by the worst.")]
    # the worst trial's most confident mistakes, ties by index: deterministic and telling
    picked = picked.sort_values(["confidence_worst", "index"], ascending=[False, True]).head(SAMPLES)
    from dlbench.config import TrainConfig

    config = TrainConfig.from_json(view.get(best_key)["config"])
    classes, images, problem = _test_images(config, data_dir, datasets_cache)

    def cname(i):
        i = int(i)
        return classes[i] if classes and 0 <= i < len(classes) else str(i)

    rows = [
        {
            "index": int(r["index"]),
            "true": cname(r["label_best"]),
            "best": f"{cname(r['pred_best'])} ({r['confidence_best']:.2f})",
            "worst": f"{cname(r['pred_worst'])} ({r['confidence_worst']:.2f})",
        }
        for r in picked.to_dict("records")
    ]
    out: list = [
        P(
            "Test images that the best trial (",
            ("bold", labels[best_key]),
            ") classified correctly and the worst (",
            ("bold", labels[worst_key]),
            ") got wrong, most confident mistakes first (confidence in brackets).",
        )
    ]
    if images is not None and all(0 <= r["index"] < len(images) for r in rows):
        png = _strip_png(images, rows)
        out.append(Image(names(sweep, "samples"), png, f"test images of {sweep}: best vs worst"))
    else:
        out.append(P(f"(The test images are not shown: {problem or 'the indices do not match the data'}.)"))
    out.append(Table(["index", "true", "best", "worst"], rows))
    return out


def _test_images(config, data_dir, cache):
    """(class names, uint8 test images (N, C, H, W) or None, why not)."""
    key = (config.dataset, json.dumps(config.dataset_options, sort_keys=True, default=str))
    if key in cache:
        return cache[key]
    from dlbench.data import get_dataset

    classes, images, problem = None, None, ""
    try:
        spec = get_dataset(config.dataset)
        classes = list(spec.info(data_dir, config.dataset_options).classes)
        if data_dir is None:
            problem = "no data folder given"
        else:
            images = spec.load(Path(data_dir), config.dataset_options, download=False).test_x.cpu().numpy()
    except DlbenchError as exc:
        problem = f"the dataset could not be loaded ({exc})"
    except Exception as exc:  # any loader failure is a note in the report, never a failed report
        problem = f"the dataset could not be loaded ({type(exc).__name__}: {exc})"
    cache[key] = (classes, images, problem)
    return cache[key]


def _strip_png(images, rows: list[dict]) -> bytes:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(rows), figsize=(2.1 * len(rows), 2.9), squeeze=False)
    for ax, r in zip(axes[0], rows, strict=True):
        img = images[r["index"]].transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
        if img.shape[2] == 1:
            ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        ax.set_title(f"#{r['index']} true: {r['true']}\nbest: {r['best']}\nworst: {r['worst']}", fontsize=7.5)
        ax.axis("off")
    fig.tight_layout()
    return to_png(fig)


# ----------------------------------------------------------------------------------------------------
# parameter counts, recorded figures, environment


def _params_section(runs: list[dict]) -> list:
    from dlbench.analysis.params import build_meta, count_macs, count_parameters
    from dlbench.config import TrainConfig
    from dlbench.data import get_dataset
    from dlbench.models import get_model_spec

    groups: dict[tuple, dict] = {}
    for run in runs:
        c = TrainConfig.from_json(run["config"])
        spec = get_dataset(c.dataset)
        info = spec.info(None, c.dataset_options)
        base = spec.info(None, {})
        shape_opts = {
            k: v
            for k, v in sorted(c.dataset_options.items())
            if v != spec.defaults.get(k) and _changes_shape(spec, k, v, base)
        }
        gkey = (
            c.model,
            c.dataset,
            tuple(info.input_shape),
            info.num_classes,
            json.dumps(shape_opts, default=str),
        )
        g = groups.setdefault(gkey, {"settings": {}, "shape_opts": shape_opts})
        g["settings"].setdefault(json.dumps(c.model_settings, sort_keys=True, default=str), c.model_settings)
    blocks: list = [Heading(2, "Parameter counts")]
    blocks.append(
        P("Counted by instantiating each model on the meta device at the settings used (MACs per image).")
    )
    for (model, dataset, shape, classes, _), g in sorted(groups.items(), key=lambda kv: kv[0]):
        spec = get_model_spec(model)
        settings = [g["settings"][k] for k in sorted(g["settings"])]
        varying = sorted({k for s in settings for k in s if any(s2.get(k) != s.get(k) for s2 in settings)})
        rows = []
        for s in settings:
            net = build_meta(spec, shape, classes, s)
            total, trainable = count_parameters(net)
            rows.append(
                {
                    **{k: _fmt_value(s.get(k)) for k in varying},
                    "params": total,
                    "trainable": trainable,
                    "macs": count_macs(net, shape),
                }
            )
        blocks.append(Heading(3, f"{model} on {dataset} ({'x'.join(map(str, shape))}, {classes} classes)"))
        held = {k: v for k, v in settings[0].items() if k not in varying}
        if held:
            blocks.append(
                P("Settings: " + ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted(held.items())) + ".")
            )
        blocks.append(Table(varying + ["params", "trainable", "macs"], rows))
        for cmd in _count_commands(spec, model, dataset, settings, varying, g["shape_opts"]):
            blocks.append(Command(cmd))
    return blocks


def _changes_shape(spec, key, value, base) -> bool:
    try:
        info = spec.info(None, {key: value})
    except Exception:
        return False
    return (info.input_shape, info.num_classes) != (base.input_shape, base.num_classes)


def _count_commands(spec, model, dataset, settings, varying, shape_opts) -> list[str]:
    """`dlbench count-params` lines that print these rows: one line when the rows are a full grid."""
    import shlex

    def line(sets: dict[str, list[str]]) -> str:
        parts = ["dlbench count-params", shlex.quote(model), "--dataset", shlex.quote(dataset)]
        parts += ["--set " + shlex.quote(k + "=" + ",".join(v)) for k, v in sets.items()]
        parts += ["--dataset-opt " + shlex.quote(f"{k}={_fmt_value(v)}") for k, v in shape_opts.items()]
        return " ".join(parts)

    non_default = sorted(
        {k for s in settings for k, v in s.items() if v != spec.defaults.get(k)} | set(varying)
    )
    values = {k: list(dict.fromkeys(_fmt_value(s.get(k)) for s in settings)) for k in non_default}
    n_grid = math.prod(len(v) for v in values.values()) if values else 1
    if n_grid == len(settings):
        return [line(values)]
    return [line({k: [_fmt_value(s.get(k))] for k in non_default}) for s in settings]


def _select_figures(
    figures: pd.DataFrame, sel: Selection, since: str | None, sweep_models: set
) -> list[dict]:
    if not len(figures):
        return []
    out = []
    models = {sel.model} if sel.model else (sweep_models if sel.sweeps else None)
    for f in figures.to_dict("records"):
        try:
            meta = json.loads(f.get("meta") or "{}")
        except ValueError:
            meta = {}
        if since and str(f.get("created", "")) < since:
            continue
        if models is not None and meta.get("model") not in models:
            continue
        if sel.dataset and meta.get("dataset") not in (None, sel.dataset):
            continue
        out.append({**f, "meta": meta})
    return sorted(out, key=lambda f: (str(f["kind"]), str(f["created"]), str(f["path"])))


def _figures_section(fig_rows: list[dict], names: _FileNames) -> list:
    blocks: list = [Heading(2, "Kernel and equivariance figures")]
    blocks.append(
        P("Figures recorded by `dlbench visualize-kernels` and `dlbench equivariance`, oldest first.")
    )
    for f in fig_rows:
        blocks.append(Heading(3, f"{f['kind']}: {f['title']}"))
        path = Path(str(f["path"]))
        try:
            png = path.read_bytes()
        except OSError:
            png = None
        if png and png[:8] == b"\x89PNG\r\n\x1a\n":
            stem = path.stem if path.stem.startswith(str(f["kind"])) else f"{f['kind']}-{path.stem}"
            blocks.append(Image(names(stem, "figure"), png, str(f["title"])))
        else:
            blocks.append(
                P(f"The figure file {path} is missing or not a PNG; the command below draws it again.")
            )
        rows = f["meta"].get("rows") if isinstance(f["meta"], dict) else None
        if f["kind"] == "equivariance" and isinstance(rows, list) and rows:
            cols = [c for c in ("transform", "measure", "error", "full_error", "margin") if c in rows[0]]
            blocks.append(Table(cols, [{c: r.get(c) for c in cols} for r in rows]))
        if f.get("command"):
            blocks.append(Command(str(f["command"])))
    return blocks


def _environment_section(runs: list[dict], outside: int) -> list:
    cols = ["device_name", "torch_version", "dlbench_version", "python_version"]
    df = pd.DataFrame([{c: str(r.get(c) or "-") for c in cols} for r in runs])
    counts = df.groupby(cols, sort=True).size().reset_index(name="runs")
    blocks: list = [Heading(2, "Environment")]
    blocks.append(P("Where the runs in this report were trained (from each run's record)."))
    blocks.append(Table(cols + ["runs"], counts.to_dict("records")))
    if outside:
        blocks.append(
            P(
                f"{outside} run{'s' * (outside != 1)} in the cache belong to no sweep and are not in this "
                "report; list them with ",
                ("code", "dlbench runs"),
                ".",
            )
        )
    return blocks


# ----------------------------------------------------------------------------------------------------
# rendering


_MD_SPECIAL = "\\`*_[]<>|#&"


def md_escape(text: str) -> str:
    """Markdown-safe text: specials backslash-escaped, except intraword underscores (inert in GFM and common
    in our column names)."""
    text = str(text).replace("\n", " ")
    out = []
    for i, c in enumerate(text):
        inner = c == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        out.append("\\" + c if c in _MD_SPECIAL and not inner else c)
    return "".join(out)


def _md_code(text: str) -> str:
    text = str(text).replace("\n", " ")
    run = max((len(s) for s in _backtick_runs(text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _backtick_runs(text: str) -> list[str]:
    runs, cur = [], ""
    for c in text:
        if c == "`":
            cur += c
        elif cur:
            runs.append(cur)
            cur = ""
    return runs + ([cur] if cur else [])


def _md_para(p: Para) -> str:
    out = []
    for style, text in p.parts:
        if style == "code":
            out.append(_md_code(text))
        elif style == "bold":
            out.append(f"**{md_escape(text)}**")
        else:
            out.append(_md_text(text))
    return "".join(out)


def _md_text(text: str) -> str:
    """Plain text with `code` spans kept as code (our own sentences use backticks for commands)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # unbalanced: escape everything
        return md_escape(text)
    return "".join(md_escape(s) if i % 2 == 0 else _md_code(s) for i, s in enumerate(parts))


def render_markdown(report: Report, figures_link: str) -> str:
    """Markdown text; images link to ``figures_link/<name>`` (a relative folder)."""
    lines = [f"# {md_escape(report.title)}", "", md_escape(report.header), ""]
    for b in report.blocks:
        if isinstance(b, Heading):
            lines += [f"{'#' * b.level} {md_escape(b.text)}", ""]
        elif isinstance(b, Para):
            lines += [_md_para(b), ""]
        elif isinstance(b, Table):
            lines += [_md_table(b), ""]
        elif isinstance(b, Image):
            lines.append(f"![{md_escape(b.alt)}]({figures_link}/{b.name})")
            lines += ([f"*{md_escape(b.caption)}*"] if b.caption else []) + [""]
        elif isinstance(b, Command):
            fence = "`" * max(3, max((len(s) for s in _backtick_runs(b.text)), default=0) + 1)
            lines += [f"{fence}sh", b.text, fence, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_table(t: Table) -> str:
    if not t.rows:
        return "*(no rows)*"
    lines = [
        "| " + " | ".join(md_escape(c) for c in t.columns) + " |",
        "|" + "|".join("---" for _ in t.columns) + "|",
    ]
    for i, row in enumerate(t.rows):
        cells = [md_escape(fmt_cell(row.get(c), c)) for c in t.columns]
        if i == t.best:
            cells = [f"**{c}**" if c else c for c in cells]
            cells[0] = f"{cells[0]} ★"
        lines.append("| " + " | ".join(cells) + " |")
    if t.best is not None:
        lines.append("")
        lines.append("★ best by validation accuracy")
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1120px;margin:2rem auto;
padding:0 1.2rem;color:#1f2328;line-height:1.5;background:#fff}
h1{border-bottom:2px solid #d0d7de;padding-bottom:.3rem}
h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2.4rem}
h3{margin-top:1.6rem}.header{color:#57606a}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.9rem;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;white-space:nowrap}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#dafbe1;font-weight:600}
figure{margin:.6rem 0 1.2rem}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem .8rem;border-radius:6px;overflow-x:auto;font-size:.85rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;padding:0 .2rem}
pre code{padding:0}.note{color:#57606a;font-size:.85rem}
"""


def _html_para(p: Para) -> str:
    out = []
    for style, text in p.parts:
        if style == "code":
            out.append(f"<code>{html.escape(text)}</code>")
        elif style == "bold":
            out.append(f"<strong>{html.escape(text)}</strong>")
        else:
            parts = str(text).split("`")
            if len(parts) % 2 == 0:
                out.append(html.escape(text))
            else:
                out.append(
                    "".join(
                        html.escape(s) if i % 2 == 0 else f"<code>{html.escape(s)}</code>"
                        for i, s in enumerate(parts)
                    )
                )
    return "<p>" + "".join(out) + "</p>"


def _html_table(t: Table) -> str:
    if not t.rows:
        return '<p class="note">(no rows)</p>'
    numeric = {c: _is_numeric(t.rows, c) for c in t.columns}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = []
    for i, row in enumerate(t.rows):
        cells = "".join(
            ('<td class="num">' if numeric[c] else "<td>") + html.escape(fmt_cell(row.get(c), c)) + "</td>"
            for c in t.columns
        )
        attr = ' class="best" title="best by validation accuracy"' if i == t.best else ""
        body.append(f"<tr{attr}>{cells}</tr>")
    note = '<p class="note">Highlighted: best by validation accuracy.</p>' if t.best is not None else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def _is_numeric(rows, column) -> bool:
    vals = [_plain(r.get(column)) for r in rows if r.get(column) is not None]
    return bool(vals) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)


def render_html(report: Report) -> str:
    """One self-contained HTML page: inline CSS, images as base64 data URIs, every string escaped."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="header">{html.escape(report.header)}</p>',
    ]
    for b in report.blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(_html_para(b))
        elif isinstance(b, Table):
            out.append(_html_table(b))
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
            out.append(
                f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">{cap}</figure>'
            )
        elif isinstance(b, Command):
            out.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------------
# writing


@dataclass
class Written:
    path: Path
    fmt: str
    figures_dir: Path | None
    figures: list[Path]
    sweeps: list[str]
    runs: int


def resolve_format(out: Path, fmt: str | None) -> str:
    suffix = out.suffix.lower()
    by_suffix = (
        "html" if suffix in (".html", ".htm") else "markdown" if suffix in (".md", ".markdown") else None
    )
    if fmt is None:
        return by_suffix or "markdown"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if by_suffix and by_suffix != fmt:
        raise UsageError(
            f"--format {fmt} does not match --out {out.name}; use a {'.html' if fmt == 'html' else '.md'} "
            "file name or leave --format out"
        )
    return fmt


def figures_dir_for(out: Path) -> Path:
    """``report.md`` -> ``report_files/`` beside it."""
    return out.with_name(f"{safe_name(out.stem)}_files")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _check_writable(out: Path) -> None:
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / 'report.md'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.with_name(f".{out.name}.{os.getpid()}.probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {out} ({exc.strerror or exc}); choose another --out"
        ) from None


def write_report(
    store, out: Path, fmt: str | None = None, selection: Selection | None = None, data_dir: Path | None = None
) -> Written:
    """Build the report and write it to ``out`` (Markdown: plus ``<stem>_files/`` beside it).

    Nothing is written anywhere else: figure names are sanitised and every file is written to a temporary
    name in its own folder and renamed into place.
    """
    out = Path(out).expanduser()
    fmt = resolve_format(out, fmt)
    _check_writable(out)
    report = collect(store, selection, data_dir)
    written: list[Path] = []
    folder = None
    try:
        if fmt == "html":
            text = render_html(report)
        else:
            folder = figures_dir_for(out)
            images = report.images()
            if images:
                folder.mkdir(exist_ok=True)
            for img in images:
                target = folder / safe_name(img.name)
                _write_atomic(target, img.png)
                written.append(target)
            text = render_markdown(report, folder.name)
        _write_atomic(out, text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {out} ({exc.strerror or exc}); choose another --out"
        ) from None
    return Written(
        out, fmt, folder if written else None, written, report.stats["sweeps"], report.stats["runs"]
    )
