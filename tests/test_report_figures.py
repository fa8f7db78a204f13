"""The figures a person expects in a sweep's report: the final metric against the swept value (log x for lr,
points in order for a categorical axis), a heatmap for a two-axis grid, the seeds' band under --repeats, the best
trial's confusion matrix, gradient norms grouped by layer kind, and the report's contents and collapsed block.

Results are recorded through ``Store.save`` with made-up metrics (no training), so every number is known.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dlbench.cache import Store
from dlbench.engine.result import RunResult
from dlbench.report.plot_base import pyplot
from dlbench.report.plot_classes import confusion_fig
from dlbench.report.plot_curves import grad_norms_fig, kind_from_name
from dlbench.report.plot_study import result_figure
from dlbench.report.plots import draw_sweep, seed_groups, seeds_band_fig
from dlbench.sweep.grid import plan_sweep

DATA = {"train_size": "200", "test_size": "40"}
LAYERS = [("conv1", "conv"), ("bn1", "norm"), ("conv2", "conv"), ("bn2", "norm"), ("fc1", "linear")]
LAYERS += [("head", "linear")]


def _result(i: int, kinds: bool = True) -> RunResult:
    """A finished run whose accuracy grows with ``i``; 40 test predictions drawn from a seeded generator."""
    rng = np.random.default_rng(i)
    acc = 0.3 + 0.05 * i
    summary = {"params": 1000, "trainable": 1000, "best_val_acc": acc, "test_acc": acc - 0.02}
    summary.update(seconds_per_epoch=1.0, inference_seconds=0.1, images_per_sec=100.0, peak_memory_mb=0.0)
    epochs = [
        {"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.1 / (e + 1), "train_acc": acc, "val_acc": acc}
        for e in range(3)
    ]
    labels = rng.integers(0, 10, 40)
    preds = {
        "index": list(range(40)),
        "label": labels.tolist(),
        "pred": np.where(rng.random(40) < acc, labels, rng.integers(0, 10, 40)).tolist(),
        "confidence": rng.random(40).tolist(),
    }
    grads = []
    for e in range(3):
        for depth, (layer, kind) in enumerate([*LAYERS, ("global", "global")]):
            row = {
                "epoch": e,
                "layer": layer,
                "depth": depth,
                "mean_norm": 10.0 ** (depth - 3) * (1 + i),
                "max_norm": 9.0,
            }
            grads.append({**row, "kind": kind} if kinds else row)
    steps = [{"step": s, "epoch": 0, "loss": 1.0 / (s + 1)} for s in range(5)]
    return RunResult("ok", "", summary, epochs, steps, grads, preds)


def _study(tmp_path, axes, repeats=1, model="mlp", kinds=True):
    plan = plan_sweep(
        model,
        "shapes",
        axes,
        settings={},
        dataset_options=dict(DATA),
        options={"epochs": "3"},
        repeats=repeats,
    )
    store = Store(tmp_path / "cache")
    for i, trial in enumerate(plan.trials):
        store.save(trial.config, _result(i, kinds))
    study = plan.study("dlbench sweep ...")
    store.save_sweep(study.to_dict())
    return store, study, study.summary(store.runs())


def _names(store, study, summary) -> list[str]:
    return list(draw_sweep(store, study, summary)[1])


def test_one_numeric_axis_draws_the_metric_against_it_on_a_log_axis_for_lr(tmp_path):
    store, study, summary = _study(tmp_path, [("lr", ["0.1", "0.05", "0.02"])])
    names = _names(store, study, summary)
    assert names[0] == "metric" and "heatmap" not in names and "seeds" not in names
    assert {"curves", "confusion", "grad_norms", "step_loss"} <= set(names)
    name, fig = result_figure(study, summary)
    ax = fig.axes[0]
    assert name == "metric" and ax.get_xscale() == "log"  # lr: log even within one decade
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "0.05", "0.02"]
    best = ax.lines[0]  # best validation accuracy, one point per value, at the value itself
    assert list(best.get_xdata()) == [0.1, 0.05, 0.02]
    assert np.allclose(best.get_ydata(), [r["best_val_acc"] for r in summary.rows])


@pytest.mark.parametrize(("values", "scale"), [(["16", "32"], "linear"), (["4", "16", "64"], "log")])
def test_other_numeric_axes_are_log_only_when_they_span_more_than_a_decade(tmp_path, values, scale):
    _, study, summary = _study(tmp_path, [("width", values)])
    assert result_figure(study, summary)[1].axes[0].get_xscale() == scale


def test_a_categorical_axis_is_points_in_the_study_order(tmp_path):
    _, study, summary = _study(tmp_path, [("activation", ["tanh", "relu", "gelu"])])
    name, fig = result_figure(study, summary)
    ax = fig.axes[0]
    assert name == "metric" and ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tanh", "relu", "gelu"]
    assert ax.lines[0].get_linestyle() == "None" and ax.lines[0].get_marker() == "o"  # points, not a line


def test_a_boolean_axis_is_points_marked_at_its_best_value(tmp_path):
    # Table columns hold numpy booleans, the summary's rows Python ones: both must read as the same value.
    _, study, summary = _study(tmp_path, [("normalize", ["false", "true"])])
    name, fig = result_figure(study, summary)
    ax = fig.axes[0]
    assert name == "metric" and [t.get_text() for t in ax.get_xticklabels()] == ["false", "true"]
    best_line = [line for line in ax.lines if str(line.get_label()).startswith("best by")]
    assert best_line and best_line[0].get_xdata()[0] == 1  # "true" trained second, so it scored higher


def test_two_axes_draw_an_annotated_heatmap(tmp_path):
    store, study, summary = _study(tmp_path, [("depth", ["1", "2"]), ("width", ["8", "16", "32"])])
    names = _names(store, study, summary)
    assert "heatmap" in names and "metric" not in names
    _, fig = result_figure(study, summary)
    val = fig.axes[0]
    assert [t.get_text() for t in val.get_yticklabels()] == ["1", "2"]
    assert [t.get_text() for t in val.get_xticklabels()] == ["8", "16", "32"]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in val.texts}
    for r in summary.rows:
        i, j = ["1", "2"].index(str(r["depth"])), ["8", "16", "32"].index(str(r["width"]))
        assert cells[(i, j)] == f"{r['best_val_acc']:.3f}"
    assert len(cells) == 6


def test_repeats_draw_a_band_with_one_colour_per_value_not_per_seed(tmp_path):
    store, study, summary = _study(tmp_path, [("lr", ["0.1", "0.01"])], repeats=3)
    names = _names(store, study, summary)
    assert "seeds" in names and "metric" in names
    groups = seed_groups(study, summary)
    assert list(groups) == ["lr=0.1", "lr=0.01"] and all(len(k) == 3 for k in groups.values())
    fig = seeds_band_fig(store.table("epochs", study.keys), groups, "t")
    acc = fig.axes[0]
    assert len(acc.lines) == 2 and len(acc.collections) == 2  # a mean line and a band per value
    assert acc.lines[0].get_color() != acc.lines[1].get_color()
    mean = store.table("epochs", groups["lr=0.1"]).groupby("epoch")["val_acc"].mean()
    assert np.allclose(acc.lines[0].get_ydata(), mean.to_numpy())
    metric = result_figure(study, summary)[1].axes[0]
    assert (
        len(metric.collections) == 2
        and "band min-max over 3 seeds" in metric.get_legend_handles_labels()[1][0]
    )


def test_confusion_counts_equal_the_cached_predictions(tmp_path):
    store, study, summary = _study(tmp_path, [("lr", ["0.1", "0.05", "0.02"])])
    preds = store.table("predictions", [summary.best_key])
    expected = pd.crosstab(preds["label"], preds["pred"]).reindex(
        index=range(10), columns=range(10), fill_value=0
    )
    fig = confusion_fig(preds, [f"c{i}" for i in range(10)], "t")
    matrix = fig.axes[0]
    drawn = np.zeros((10, 10), dtype=int)
    for t in matrix.texts:
        x, y = t.get_position()
        drawn[round(y), round(x)] = int(t.get_text())
    assert (drawn == expected.to_numpy()).all() and drawn.sum() == len(preds) == 40
    per_class = [p.get_width() for p in fig.axes[1].patches]
    totals = expected.sum(axis=1).to_numpy()
    assert np.allclose(per_class, np.divide(np.diag(expected), totals, out=np.zeros(10), where=totals > 0))
    assert [t.get_text() for t in matrix.get_yticklabels()] == [f"c{i}" for i in range(10)]


@pytest.mark.parametrize("recorded", [True, False])
def test_grad_norms_grouped_by_kind_never_join_a_conv_to_a_norm(tmp_path, recorded):
    store, study, summary = _study(tmp_path, [("lr", ["0.1", "0.05"])], model="cnn", kinds=recorded)
    grads = store.table("grads", study.keys)
    kind_at = {d: k for d, (_, k) in enumerate(LAYERS)}
    fig = grad_norms_fig(grads, {k: k for k in study.keys}, "t")
    panels = {ax.get_title().split(" ")[0]: ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {"conv", "norm", "linear", "global"}
    for kind in ("conv", "norm", "linear"):
        lines = panels[kind].lines
        assert len(lines) == 2
        for line in lines:
            depths = list(line.get_xdata())
            assert depths == sorted(depths) and {kind_at[d] for d in depths} == {kind}
    fig.canvas.draw()  # log axes are labelled in plain numbers (1, 0.1), never mathtext powers
    labels = [t.get_text() for ax in panels.values() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and not any("$" in t or "e-0" in t for t in labels), labels
    pyplot().close("all")


def test_layer_kinds_from_names_and_as_the_engine_records_them():
    assert [
        kind_from_name(n) for n in ("features.3", "layers.0.0.bn1", "blocks.1.norm2", "stem", "head")
    ] == [
        "other",
        "norm",
        "norm",
        "conv",
        "linear",
    ]
    import torch
    from torch import nn

    from dlbench.engine.metrics import GradNorms

    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3), nn.LayerNorm(3)
    )
    rows = GradNorms(model, torch.device("cpu")).rows(0)
    assert [(r["layer"], r["kind"]) for r in rows] == [
        ("0", "conv"),
        ("1", "norm"),
        ("3", "linear"),
        ("4", "norm"),
        ("global", "global"),
    ]


def _github_slug(text: str) -> str:
    """GitHub's anchor for a heading's rendered text (written here independently of the report's code)."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def test_contents_link_to_every_heading_and_held_fixed_settings_are_collapsed(tmp_path):
    from dlbench.report.build import build_report
    from dlbench.report.html import render_html
    from dlbench.report.markdown import render_markdown

    store, _, _ = _study(tmp_path, [("lr", ["0.1", "0.05"])])
    plan = plan_sweep(
        "mlp",
        "shapes",
        [("activation", ["relu", "tanh"])],
        settings={},
        dataset_options=dict(DATA),
        options={},
    )
    for i, trial in enumerate(plan.trials):
        store.save(trial.config, _result(i))
    store.save_sweep(plan.study("dlbench sweep activation relu,tanh").to_dict())
    report = build_report(store)
    page = render_html(report)
    ids = re.findall(r'<h[1-6] id="([^"]+)"', page)
    links = re.findall(r'<a href="#([^"]+)"', page)
    assert len(ids) == len(set(ids)) and set(links) == set(ids) and "results-1" in ids
    assert page.index('<nav class="toc">') < page.index("<h2")
    details = re.findall(r"<details><summary>(.*?)</summary>(.*?)</details>", page, re.S)
    assert len(details) == 2 and all("<strong>Held fixed</strong>" in body for _, body in details)
    assert page.index('<h3 id="results"') < page.index("<details>")  # results first, settings after
    text = render_markdown(report, "r_files")
    headings = []
    for line in text.splitlines():
        m = re.match(r"#{2,6} (.*)", line)
        if m:
            headings.append(_github_slug(m.group(1).replace("\\", "")))
    unique = []
    for h in headings:  # GitHub numbers repeated anchors -1, -2, ...
        n = sum(1 for u in unique if re.fullmatch(re.escape(h) + r"(-\d+)?", u))
        unique.append(h if n == 0 else f"{h}-{n}")
    md_links = re.findall(r"\]\(#([^)]+)\)", text)
    assert md_links and set(md_links) == set(unique)
    assert text.count("<details>") == 2 and text.count("</details>") == 2


def test_figures_reused_from_the_sweep_folder_keep_the_report_order(tmp_path, monkeypatch):
    import dlbench.report.plots as plots
    from dlbench.paths import safe_name

    store, study, summary = _study(tmp_path, [("lr", ["0.1", "0.05"])], repeats=2)
    written = plots.sweep_figures(store, study, store.root / "sweeps" / safe_name(study.name), summary)
    assert list(written) == ["metric", "seeds", "curves", "confusion", "grad_norms", "step_loss"]

    def no_drawing(*a, **k):
        raise AssertionError("the sweep's own figures are up to date: nothing may be drawn")

    monkeypatch.setattr(plots, "draw_sweep", no_drawing)
    kept = plots.kept_pngs(store, study, summary, store.runs(keys=study.keys))
    assert kept is not None
    _, pngs = kept
    assert list(pngs) == list(written)  # the stamp lists them by name; the report shows them results first
    assert pngs == {name: path.read_bytes() for name, path in written.items()}


def test_under_repeats_the_seeds_of_one_value_share_a_colour_and_differ_in_dash(tmp_path):
    from dlbench.report.plot_curves import curves_fig
    from dlbench.report.plots import drawing

    store, study, summary = _study(tmp_path, [("lr", ["0.1", "0.01"])], repeats=2)
    plan = drawing(study, summary)
    fig = curves_fig(store.table("epochs", list(plan.labels)), plan.labels, plan.title, plan.seeds)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    by_value: dict[str, set] = {}
    for lab, line in lines.items():
        by_value.setdefault(lab.split(" ")[0], set()).add((line.get_color(), line.get_linestyle()))
    assert sorted(by_value) == ["lr=0.01", "lr=0.1"]
    for styles in by_value.values():
        assert len({c for c, _ in styles}) == 1 and len({d for _, d in styles}) == 2
    assert by_value["lr=0.1"] != by_value["lr=0.01"]


def test_a_one_epoch_run_has_one_integer_epoch_tick():
    from dlbench.report.plot_curves import curves_fig

    epochs = pd.DataFrame(
        [{"key": "k", "epoch": 0, "train_loss": 2.3, "val_loss": 2.3, "train_acc": 0.1, "val_acc": 0.1}]
    )
    fig = curves_fig(epochs, {"k": "lr=0.1"}, "one epoch")
    fig.canvas.draw()
    ax = fig.axes[2]
    lo, hi = ax.get_xlim()
    shown = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert shown == [1.0]  # not 0.945, 0.960, ... around the one point
