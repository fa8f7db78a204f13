"""Test images the best trial classified correctly and the worst got wrong, from their recorded predictions.

The images themselves are read through :mod:`dlbench.data` (the dataset's test split, never downloaded); when
they cannot be loaded the report says why and still shows the table.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlbench.config import TrainConfig
from dlbench.errors import DlbenchError
from dlbench.report.blocks import FileNames, Image, P, Table
from dlbench.report.plots import pyplot, to_png
from dlbench.sweep.study import Study, Summary

SAMPLES = 5  # test images in the best-vs-worst strip


def samples(store, study: Study, summary: Summary, runs: dict, names: FileNames, data_dir, loaded) -> list:
    """Blocks comparing the study's best and worst trial on test images (or a note saying why not)."""
    best, worst = summary.best_key, summary.worst_key
    if not best or not worst:
        return [P("No comparison: the sweep needs two finished trials with different validation accuracy.")]
    preds = store.table("predictions", [best, worst])
    if preds.empty or not {"index", "label", "pred"} <= set(preds.columns):
        return [P("No comparison: the cache holds no test predictions for these trials.")]
    cols = ["index", "label", "pred", "confidence"]
    both = preds.loc[preds["key"] == best, cols].merge(
        preds.loc[preds["key"] == worst, cols], on="index", suffixes=("_best", "_worst")
    )
    picked = both[(both["pred_best"] == both["label_best"]) & (both["pred_worst"] != both["label_best"])]
    if picked.empty:
        return [P("No test image was classified correctly by the best trial and wrongly by the worst.")]
    # the worst trial's most confident mistakes, ties by index: deterministic and telling
    picked = picked.sort_values(["confidence_worst", "index"], ascending=[False, True]).head(SAMPLES)
    classes, images, problem = _test_images(TrainConfig.from_json(runs[best]["config"]), data_dir, loaded)

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
    labels = study.trial_labels(summary.trials)
    out: list = [
        P(
            "Test images that the best trial (",
            ("bold", labels[best]),
            ") classified correctly and the worst (",
            ("bold", labels[worst]),
            ") got wrong, most confident mistakes first (confidence in brackets).",
        )
    ]
    if images is not None and all(0 <= r["index"] < len(images) for r in rows):
        out.append(
            Image(
                names(study.name, "samples"),
                _strip_png(images, rows),
                f"test images of {study.name}: best vs worst",
            )
        )
    else:
        out.append(P(f"(The test images are not shown: {problem or 'the indices do not match the data'}.)"))
    out.append(Table(["index", "true", "best", "worst"], rows))
    return out


def _test_images(config: TrainConfig, data_dir, loaded: dict):
    """(class names, uint8 test images (N, C, H, W) or None, why not); ``loaded`` caches per dataset config."""
    key = (config.dataset, json.dumps(config.dataset_options, sort_keys=True, default=str))
    if key in loaded:
        return loaded[key]
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
    loaded[key] = (classes, images, problem)
    return loaded[key]


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
    # fixed margins: three title lines of 7.5 pt fit in 0.55 in above the images (tight_layout measured every
    # text to find about the same, a third of the strip's drawing time)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=1 - 0.55 / 2.9, wspace=0.08)
    return to_png(fig)
