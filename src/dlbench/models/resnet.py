"""ResNet18 for 32x32 images (He et al. 2016, CIFAR variant): 3x3 stem with 64 kernels, no max-pool.

11,173,962 parameters for 10 classes on 32x32 RGB.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from dlbench.models._layers import positive
from dlbench.models._registry import register_model
from dlbench.models.anatomy import Anatomy


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:  # project when the shape changes
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int, blocks: tuple):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            layers = [BasicBlock(c_in, c_out, 1 if i == 0 else 2)]
            layers += [BasicBlock(c_out, c_out, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):  # (B, C, H, W) -> (B, classes)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x)).flatten(1)
        return self.fc(x)


def _anatomy(model: CifarResNet) -> Anatomy:
    """Stem conv1; head fc; blocks: the BasicBlocks of the stages in order (8 in resnet18), as torchvision's."""
    blocks = tuple(f"layers.{i}.{j}" for i, stage in enumerate(model.layers) for j in range(len(stage)))
    return Anatomy("conv1", "fc", blocks)


@register_model(
    "resnet18",
    family="resnet",
    description="CIFAR ResNet18: 3x3 stem of 64, no max-pool, 4 stages of 2 basic blocks",
    anatomy=_anatomy,
)
def resnet18(input_shape, num_classes, *, width: int = 64, blocks: tuple = (2, 2, 2, 2)):
    positive("width", width)
    for n in blocks:
        positive("every entry of blocks", n)
    return CifarResNet(input_shape[0], num_classes, width, tuple(blocks))
