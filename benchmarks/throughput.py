"""Training throughput, measured side by side in one run, on CIFAR-10-shaped data (synthetic, offline).

For each model, in the precision and memory format ``--precision auto`` / ``--memory-format auto`` choose on this
device (bf16 and channels_last where the hardware is faster with them; see docs/train.md):
  (a) engine:   dlbench's end-to-end training images/s (uint8 data resident on the device, on-device crop and
                flip, fused optimizer on CUDA), steady-state epochs only;
  (b) hand:     a hand-written training loop over normalised tensors already on the device, same precision and
                memory format: the model's own limit, with no data handling at all;
  (c) loader:   a torchvision-style dataset with CPU transforms (RandomCrop, RandomHorizontalFlip, ToTensor,
                Normalize) through a DataLoader, fp32, NCHW, plain optimizer: what a first script does;
  (d) fp32:     the engine again with --precision fp32 --memory-format contiguous (dlbench's CPU path before
                precision and memory format were chosen per device), unless --no-fp32.
It prints each rate, a/b, a/c, a/d, and the engine's fraction of the matmul roofline: training FLOPs per image
(6 x the forward MACs, counted on the meta device) x images/s over the rate of a large matmul measured here in
the same precision (``roofline``).

    python benchmarks/throughput.py                      # CUDA if available, else small CPU sizes
    python benchmarks/throughput.py --models cnn,resnet18 --images 1024
    python benchmarks/throughput.py --models resnet18 --images 50000 --epochs 3 --workers 8   # a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from dlbench.data import ArrayDataset, DatasetInfo
from dlbench.engine import train
from dlbench.engine.environment import synchronize
from dlbench.engine.trainer import make_optimizer
from dlbench.models import create_model, get_model_spec
from dlbench.models.counting import build_meta, count_macs
from dlbench.resolve import resolve_config

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MODELS = ["mlp", "cnn", "resnet18", "mlpmixer", "vgg16"]
SETTINGS = {
    "vgg16": {"head": "cifar"}
}  # 32x32 inputs: the CIFAR head (torchvision's 7x7 head is 119M weights)
SHAPE = (3, 32, 32)


def synthetic(n: int, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    info = DatasetInfo("cifar10-shaped", SHAPE, 10, n, 1000, tuple(map(str, range(10))), MEAN, STD)
    x = torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return ArrayDataset(info, x, y, x[:1000].clone(), y[:1000].clone())


def config_for(model: str, device: str, batch: int, epochs: int, **extra):
    opts = {"epochs": epochs, "batch_size": batch, "augment": True, "val_split": 0.0, "device": device}
    return resolve_config(model, "shapes", SETTINGS.get(model, {}), {}, {**opts, **extra})


def engine_rate(config, data: ArrayDataset) -> float:
    return train(config, data).summary["images_per_sec"]  # mean over epochs after the first (warm-up)


def hand_rate(config, batch: int, steps: int) -> float:
    """A hand-written loop on resident tensors, in the config's precision and memory format."""
    opts = config.options
    dev = torch.device(opts.device if opts.device != "auto" else config.device_kind)
    net = create_model(config.model, SHAPE, 10, config.model_settings).to(dev)
    x = torch.randn(batch, *SHAPE, device=dev)
    if opts.memory_format == "channels_last":
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = make_optimizer(net, opts, dev)
    y = torch.randint(0, 10, (batch,), device=dev)

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=opts.precision == "bf16"):
            out = net(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(max(2, steps // 5)):
        step()
    synchronize(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(dev)
    return steps * batch / (time.perf_counter() - t)


class PilDataset(Dataset):
    """What torchvision's CIFAR10 does per item: a PIL image through CPU transforms."""

    def __init__(self, data: ArrayDataset):
        import torchvision.transforms as T

        self.images = data.train_x.permute(0, 2, 3, 1).numpy()  # (N, H, W, C) as CIFAR10.data
        self.labels = data.train_y.tolist()
        self.transform = T.Compose(
            [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]
        )

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def loader_rate(model: str, data: ArrayDataset, device: str, batch: int, epochs: int, workers: int) -> float:
    dev = torch.device(device)
    net = create_model(model, SHAPE, 10, SETTINGS.get(model, {})).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(
        PilDataset(data),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=dev.type == "cuda",
        persistent_workers=workers > 0,
    )
    rates = []
    for _ in range(epochs):
        synchronize(dev)
        t, seen = time.perf_counter(), 0
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(yb)
        synchronize(dev)
        rates.append(seen / (time.perf_counter() - t))
    return statistics.mean(rates[1:] or rates)


def roofline(device: str, precision: str, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of an n x n matmul in ``precision`` (the best of ``reps``): the rate dense layers can reach."""
    dev = torch.device(device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    best = float("inf")
    for _ in range(reps):
        synchronize(dev)
        t = time.perf_counter()
        a @ b
        synchronize(dev)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def training_flops(model: str) -> float:
    """FLOPs to train on one image: forward MACs x 2 (FLOPs) x 3 (forward, and backward's two products)."""
    macs = count_macs(build_meta(get_model_spec(model), SHAPE, 10, SETTINGS.get(model, {})), SHAPE)
    return 6.0 * (macs or float("nan"))


def main() -> None:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--images", type=int, default=50_000 if cuda else 1024)
    p.add_argument("--batch-size", type=int, default=512 if cuda else 128)
    p.add_argument("--epochs", type=int, default=3 if cuda else 2, help="first is warm-up")
    p.add_argument("--workers", type=int, default=4 if cuda else 1, help="DataLoader workers (loader)")
    p.add_argument("--no-fp32", dest="fp32", action="store_false", help="skip the fp32 engine column")
    args = p.parse_args()
    data = synthetic(args.images)
    steps = max(8, args.images // args.batch_size)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    roofs: dict[str, float] = {}
    print(
        f"device: {name}, {torch.get_num_threads()} threads; torch {torch.__version__}; {args.images} "
        f"images/epoch, batch {args.batch_size}, {args.epochs} epochs (first is warm-up); loader: "
        f"{args.workers} DataLoader workers"
    )
    head = f"{'model':9} {'prec':>5} {'format':>13} {'engine':>8} {'hand':>8} {'loader':>8} {'fp32':>8}"
    print(f"{head} {'a/b':>5} {'a/c':>6} {'a/d':>5} {'roofline':>9}   (img/s; roofline: fraction)")
    for model in args.models.split(","):
        config = config_for(model, args.device, args.batch_size, args.epochs)
        prec = config.options.precision
        if prec not in roofs:
            roofs[prec] = roofline(args.device, prec)
        a = engine_rate(config, data)
        b = hand_rate(config, args.batch_size, steps)
        c = loader_rate(model, data, args.device, args.batch_size, args.epochs, args.workers)
        d = float("nan")
        if args.fp32:
            fp32 = config_for(
                model, args.device, args.batch_size, args.epochs, precision="fp32", memory_format="contiguous"
            )
            d = engine_rate(fp32, data)
        frac = a * training_flops(model) / roofs[prec]
        print(
            f"{model:9} {prec:>5} {config.options.memory_format:>13} {a:8,.0f} {b:8,.0f} {c:8,.0f} {d:8,.0f} "
            f"{a / b:5.2f} {a / c:6.2f} {a / d:5.2f} {frac:9.2f}",
            flush=True,
        )
    print("roofline (matmul 2048^3): " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in roofs.items()))


if __name__ == "__main__":
    main()
