"""How much faster are K trials trained fused than one after another? S_K = K x time(alone) / time(fused).

For each model, one trial is trained alone and groups of K = 2, 4, 8 trials (learning rates 0.1, 0.05, ...)
are trained fused, side by side in one process on the same data; the time compared is the training steps of the
fastest epoch after the first (the epochs table's ``seconds``: evaluation and the first epoch's one-time costs
left out; the fastest, because other processes on a shared machine only ever slow an epoch down). The alone run is timed before and after the fused ones and averaged, so a change of load during
the run shows as a difference between the two; a fused pair is trained first, untimed, to warm up. S_K > 1: fusing K trials is faster than training them one by
one; S_K = K would be a group as fast as one trial.

    python benchmarks/fused.py                                   # Fashion-MNIST from $DLBENCH_TEST_DATA
    python benchmarks/fused.py --dataset shapes --subset 2000    # offline
    python benchmarks/fused.py --threads 1                       # on a busy machine
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from dlbench.data import get_dataset
from dlbench.engine import train
from dlbench.engine.fused import train_group
from dlbench.resolve import resolve_config

# name -> (model, settings, share of --subset): the larger models see fewer images so that one run stays short
MODELS = {
    "mlp-64": ("mlp", {"width": "64"}, 1.0),
    "mlp-256": ("mlp", {"width": "256"}, 1.0),
    "cnn": ("cnn", {"depth": "2", "width": "16", "head_width": "64"}, 1.0),
    "resnet18-16": ("resnet18", {"width": "16"}, 0.125),
    "mixer-64": ("mlpmixer", {"embed_dim": "64"}, 0.5),
    "mixer-256": ("mlpmixer", {}, 0.125),
    "vgg16_bn": ("vgg16_bn", {"head": "cifar"}, 1 / 16),
}
SQUARE_32 = ("vgg16_bn",)  # VGG halves the image five times: it trains on `shapes` at 32x32 instead


def steady_seconds(result) -> float:
    """The fastest epoch after the first (the least disturbed by other processes on a shared machine)."""
    return min(e["seconds"] for e in result.epochs[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DLBENCH_TEST_DATA", "data")))
    parser.add_argument("--subset", type=int, default=6000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--models", default=",".join(MODELS), help=f"of {', '.join(MODELS)}")
    parser.add_argument("--ks", default="2,4,8")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:  # on a shared machine, OpenMP threads spinning for a busy core distort every timing
        torch.set_num_threads(args.threads)
    data = get_dataset(args.dataset).load(args.data_dir, {})
    shapes32 = None
    ks = [int(k) for k in args.ks.split(",")]
    print(f"{args.dataset}, {args.subset} images, batch {args.batch_size}, {args.precision}, ")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}")
    print(f"{'model':11} {'alone s':>8}" + "".join(f" {f'fused K={k} s':>13} {f'S_{k}':>6}" for k in ks))
    for name in args.models.split(","):
        model, settings, share = MODELS[name]
        dataset, options, images = args.dataset, {}, max(args.batch_size, int(args.subset * share))
        if model in SQUARE_32:
            dataset, options = "shapes", {"image_size": "32", "train_size": str(images), "test_size": "256"}
            folder = Path(tempfile.mkdtemp(prefix="dlbench-fused-"))  # shapes is drawn, not read
            shapes32 = shapes32 or get_dataset("shapes").load(folder, {k: int(v) for k, v in options.items()})
        source = shapes32 if model in SQUARE_32 else data

        def config(
            lr: float, model=model, settings=settings, dataset=dataset, options=options, images=images
        ):
            opts = {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "train_subset": images,
                "lr": lr,
                "precision": args.precision,
            }
            return resolve_config(model, dataset, settings, options, {k: str(v) for k, v in opts.items()})

        train_group([config(0.1), config(0.05)], source)  # warm-up (allocator, kernels), not timed
        before = steady_seconds(train(config(0.1), source))
        fused = {
            k: steady_seconds(train_group([config(0.1 / 2**i) for i in range(k)], source)[0]) for k in ks
        }
        after = steady_seconds(train(config(0.1), source))
        alone = (before + after) / 2
        cells = "".join(f" {fused[k]:13.3f} {k * alone / fused[k]:6.2f}" for k in ks)
        print(f"{name:11} {alone:8.3f}{cells}   (alone before/after: {before:.3f}/{after:.3f})")


if __name__ == "__main__":
    main()
