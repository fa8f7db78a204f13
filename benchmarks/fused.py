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
from pathlib import Path

import torch

from dlbench.data import get_dataset
from dlbench.engine import train
from dlbench.engine.fused import train_group
from dlbench.resolve import resolve_config

MODELS = {
    "mlp-64": ("mlp", {"width": "64"}),
    "mlp-256": ("mlp", {"width": "256"}),
    "cnn": ("cnn", {"depth": "2", "width": "16", "head_width": "64"}),
}


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
    ks = [int(k) for k in args.ks.split(",")]
    print(f"{args.dataset}, {args.subset} images, batch {args.batch_size}, {args.precision}, ")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}")
    print(f"{'model':8} {'alone s':>8}" + "".join(f" {f'fused K={k} s':>13} {f'S_{k}':>6}" for k in ks))
    for name in args.models.split(","):
        model, settings = MODELS[name]

        def config(lr: float, model=model, settings=settings):
            opts = {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "train_subset": args.subset,
                "lr": lr,
                "precision": args.precision,
            }
            return resolve_config(model, args.dataset, settings, {}, {k: str(v) for k, v in opts.items()})

        train_group([config(0.1), config(0.05)], data)  # warm-up (allocator, kernels), not timed
        before = steady_seconds(train(config(0.1), data))
        fused = {k: steady_seconds(train_group([config(0.1 / 2**i) for i in range(k)], data)[0]) for k in ks}
        after = steady_seconds(train(config(0.1), data))
        alone = (before + after) / 2
        cells = "".join(f" {fused[k]:13.3f} {k * alone / fused[k]:6.2f}" for k in ks)
        print(f"{name:8} {alone:8.3f}{cells}   (alone before/after: {before:.3f}/{after:.3f})")


if __name__ == "__main__":
    main()
