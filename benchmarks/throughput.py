"""Training throughput, measured side by side in one run, on CIFAR-10-shaped data (synthetic, offline).

For each model:
  (a) engine:   dlbench's end-to-end training images/s (uint8 data resident on the device, on-device crop and
                flip, bf16 autocast and channels_last on CUDA, fused optimizer), steady-state epochs only;
  (b) ceiling:  the same training step on tensors already on the device, normalised, no data handling at all;
  (c) naive:    a torchvision-style dataset with CPU transforms (RandomCrop, RandomHorizontalFlip, ToTensor,
                Normalize) through a DataLoader, fp32, NCHW, plain optimizer.
It prints eta = a/b (how close the engine gets to the model's own ceiling) and a/c (speed-up over naive).

    python benchmarks/throughput.py                      # CUDA if available, else small CPU sizes
    python benchmarks/throughput.py --models resnet18 --images 50000 --epochs 3 --workers 8
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
from dlbench.resolve import resolve_config

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MODELS = ["mlp", "cnn", "resnet18", "mlpmixer", "vgg16"]
SETTINGS = {
    "vgg16": {"head": "cifar"}
}  # 32x32 inputs: the CIFAR head (torchvision's 7x7 head is 119M weights)


def synthetic(n: int, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    info = DatasetInfo("cifar10-shaped", (3, 32, 32), 10, n, 1000, tuple(map(str, range(10))), MEAN, STD)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return ArrayDataset(info, x, y, x[:1000].clone(), y[:1000].clone())


def engine_rate(model: str, data: ArrayDataset, device: str, batch: int, epochs: int) -> float:
    opts = {"epochs": epochs, "batch_size": batch, "augment": True, "val_split": 0.0, "device": device}
    config = resolve_config(model, "shapes", SETTINGS.get(model, {}), {}, opts)
    result = train(config, data)
    return result.summary["images_per_sec"]  # mean over epochs after the first (warm-up)


def ceiling_rate(model: str, device: str, batch: int, steps: int) -> float:
    dev = torch.device(device)
    spec = get_model_spec(model)
    net = create_model(model, (3, 32, 32), 10, SETTINGS.get(model, {})).to(dev)
    channels_last = spec.conv and dev.type == "cuda"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(
        net, resolve_config(model, "shapes", SETTINGS.get(model, {}), {}, {"device": device}).options, dev
    )
    x = torch.randn(batch, 3, 32, 32, device=dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=dev)
    amp = dev.type == "cuda"

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            out = net(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(max(3, steps // 5)):
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


def naive_rate(model: str, data: ArrayDataset, device: str, batch: int, epochs: int, workers: int) -> float:
    dev = torch.device(device)
    net = create_model(model, (3, 32, 32), 10, SETTINGS.get(model, {})).to(dev)
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


def main() -> None:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--images", type=int, default=50_000 if cuda else 1536)
    p.add_argument("--batch-size", type=int, default=512 if cuda else 128)
    p.add_argument("--epochs", type=int, default=3 if cuda else 2, help="first epoch is warm-up")
    p.add_argument("--workers", type=int, default=4 if cuda else 1, help="DataLoader workers (naive)")
    args = p.parse_args()
    if args.device == "cpu":
        torch.backends.mkldnn.enabled = True
    data = synthetic(args.images)
    steps = max(10, args.images // args.batch_size)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        f"device: {name}; torch {torch.__version__}; {args.images} images/epoch, batch {args.batch_size}, "
        f"{args.epochs} epochs (first is warm-up), naive DataLoader with {args.workers} workers"
    )
    print(
        f"{'model':10} {'engine img/s':>13} {'ceiling img/s':>14} {'naive img/s':>12} {'eta=a/b':>8} {'a/c':>6}"
    )
    for model in args.models.split(","):
        a = engine_rate(model, data, args.device, args.batch_size, args.epochs)
        b = ceiling_rate(model, args.device, args.batch_size, steps)
        c = naive_rate(model, data, args.device, args.batch_size, args.epochs, args.workers)
        print(f"{model:10} {a:13,.0f} {b:14,.0f} {c:12,.0f} {a / b:8.2f} {a / c:6.2f}", flush=True)


if __name__ == "__main__":
    main()
