"""ResNet18 for 32x32 images (He et al. 2016, CIFAR variant): 3x3 stem with 64 kernels, no max-pool.

11,173,962 parameters for 10 classes on 32x32 RGB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.models._layers import positive
from dlbench.models._registry import register_model
from dlbench.models.anatomy import Anatomy

if TYPE_CHECKING:
    from dlbench.models.resnet_blocks import CifarResNet


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
    from dlbench.models.resnet_blocks import CifarResNet

    return CifarResNet(input_shape[0], num_classes, width, tuple(blocks))
