"""The whole dataset resident on the device as uint8, served in shuffled batches with on-device augmentation.

A CPU DataLoader with per-image transforms starves a GPU on 32x32 images; here a batch is one gather from a
uint8 tensor already on the device, augmentation is a few batched tensor ops, and normalisation happens on the
fly in float (:class:`dlbench.data.transforms.InputTransform`, shared with analysis). For transfer learning a
batch is also brought to the size and normalisation the pretrained weights expect (grey images repeated to 3
channels, bilinear resize after augmentation), still batch by batch on the device, so the resident data stays
uint8 at its own size. Shuffling uses a generator seeded by (seed, epoch), so
a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlbench.data import ArrayDataset
from dlbench.data.transforms import InputTransform

SPLIT_SEED = 0  # the validation split is the same for every training seed: repeats differ only in training
# Evaluation batches: large on a GPU (fewer launches); on the CPU a batch whose activations stay in the caches
# is faster: 256 against 1,024 took 0.92 s against 1.52 s for the cnn's 10,000 test images, 12.2 s against
# 16.4 s for resnet18 on 2,000 CIFAR-sized images, 15.8 s against 21.6 s for the Mixer on 10,000 (bf16,
# channels_last, docs/benchmarks.md). The images of a batch are evaluated independently either way.
EVAL_BATCH = {"cuda": 1024, "cpu": 256}
EVAL_PIXELS = 32 * 32  # per image of the batch size: batches of resized images hold about as many pixels
INITIAL_VAL = 1000  # images for the accuracy before the first step of a run from scratch (chance level)


def val_size(n_val: int, train_subset: int, val_split: float) -> int:
    """Validation images for ``--train-subset``: the same fraction of what is used as ``val_split`` is of the
    whole (5,000 training images at 0.1 validate on 556), drawn from the full split, at least one."""
    if n_val == 0:
        return 0
    return max(1, min(n_val, round(train_subset * val_split / (1 - val_split))))


def _seeded(seed: int, epoch: int, device) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(seed * 100_003 + epoch)
    return g


@dataclass
class Split:
    x: torch.Tensor  # (N, C, H, W) uint8, on the device (or pinned host memory)
    y: torch.Tensor  # (N,) int64
    index: torch.Tensor  # (N,) positions in the original split, for per-sample predictions

    def __len__(self) -> int:
        return self.x.shape[0]


class DeviceData:
    """Train/validation/test splits on ``device``, with batched crop+flip and normalisation."""

    def __init__(
        self,
        data: ArrayDataset,
        device: torch.device,
        *,
        val_split: float,
        train_subset: int,
        normalize: bool,
        augment: bool,
        channels_last: bool,
        channels: int | None = None,
        size: int | None = None,
        mean=None,
        std=None,
    ):
        """``channels``/``size``: what the model is fed, when not the data's own (1 -> 3 channels repeats grey
        images; ``size`` resizes to size x size). ``mean``/``std``: normalisation instead of the dataset's."""
        self.device = device
        self.info = data.info
        n = data.train_x.shape[0]
        order = torch.randperm(n, generator=_seeded(SPLIT_SEED, 0, "cpu"))
        n_val = int(round(n * val_split))
        train_idx = order[n_val:].sort().values
        if train_subset and train_subset < len(train_idx):
            train_idx = train_idx[:train_subset]
            n_val = val_size(n_val, train_subset, val_split)
        self.resident = self._fits(data, device)
        self.train = self._put(data.train_x, data.train_y, train_idx)
        self.val = self._put(data.train_x, data.train_y, order[:n_val].sort().values)
        # The untrained model's accuracy, on a random part of the validation split (chance level, from scratch)
        self.initial_val = self._put(
            data.train_x, data.train_y, order[: min(n_val, INITIAL_VAL)].sort().values
        )
        test_idx = torch.arange(data.test_x.shape[0])
        self.test = self._put(data.test_x, data.test_y, test_idx)
        self.augment = augment
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.transform = InputTransform(
            data.info.input_shape,
            data.info.mean if mean is None else mean,
            data.info.std if std is None else std,
            normalize,
            size=size,
            channels=channels,
            device=device,
            memory_format=self.memory_format,
        )
        self.size = self.transform.size
        batch = EVAL_BATCH.get(device.type, EVAL_BATCH["cpu"])
        self.eval_batch = (
            batch if not self.size else max(32, min(batch, batch * EVAL_PIXELS // (size * size)))
        )

    @staticmethod
    def _fits(data: ArrayDataset, device: torch.device) -> bool:
        if device.type != "cuda":
            return True
        need = data.train_x.numel() + data.test_x.numel()
        free, _ = torch.cuda.mem_get_info(device)
        return need < 0.5 * free  # leave most of the memory to the model

    def _put(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> Split:
        xs, ys = x[idx], y[idx]
        if self.resident:
            return Split(xs.to(self.device), ys.to(self.device), idx)
        return Split(xs.pin_memory(), ys.pin_memory(), idx)  # copied batch by batch, asynchronously

    def steps_per_epoch(self, batch_size: int) -> int:
        return (len(self.train) + batch_size - 1) // batch_size

    def train_batches(self, batch_size: int, seed: int, epoch: int):
        """Yield (x float (B, C, H, W), y (B,)) for one epoch, in an order fixed by (seed, epoch)."""
        g = _seeded(seed, epoch + 1, "cpu")
        perm = torch.randperm(len(self.train), generator=g)
        if self.resident:
            perm = perm.to(self.device)  # one copy per epoch
        # Augmentation draws on the device: a per-batch copy of CPU draws would stall the GPU stream each step.
        g_aug = g
        if self.augment and self.device.type != "cpu":
            g_aug = torch.Generator(device=self.device)
            g_aug.manual_seed(seed * 100_003 + epoch + 1)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]  # index_select: ~20x faster than x[idx] for uint8 on the CPU
            xb = self.transform.to_float(self.train.x.index_select(0, idx))
            if self.augment:
                xb = self._crop_flip(xb, g_aug)
            yield self.transform.fit(xb), self.train.y.index_select(0, idx).to(self.device, non_blocking=True)

    def eval_batches(self, split: Split):
        n = self.eval_batch
        for i in range(0, len(split), n):
            yield (
                self.transform.fit(self.transform.to_float(split.x[i : i + n])),
                split.y[i : i + n].to(self.device),
            )

    def _crop_flip(self, x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
        """Random crop after zero padding by ``pad``, and horizontal flip, for the whole batch at once."""
        b, c, h, w = x.shape
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=g.device)  # g lives on x's device
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=g.device)
        flip = torch.rand(b, generator=g, device=g.device) < 0.5
        rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H)
        cols = dx[:, None] + torch.arange(w, device=x.device)  # (B, W)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        # One gather over each image's flattened padded plane (the same pixels as indexing by (row, col), 2-5x
        # faster on the CPU than advanced indexing).
        wp = w + 2 * pad
        flat = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        out = padded.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)
        return out.contiguous(memory_format=self.memory_format)
