"""VGG16 and VGG16-BN, built by torchvision.

``head=torchvision`` (default) keeps torchvision's 7x7 adaptive pool and 4096-4096 classifier, exactly as
torchvision builds them. ``head=cifar`` is the CIFAR-friendly variant: global average pooling and one
linear layer from 512 features, which drops about 119M classifier weights that 32x32 images cannot use.
A first convolution for non-RGB input is rebuilt with the right number of input channels.
"""

from __future__ import annotations

from dlbench.models._layers import require
from dlbench.models._registry import register_model
from dlbench.models.anatomy import torchvision_anatomy

HEADS = ("torchvision", "cifar")


def _vgg(input_shape, num_classes, batchnorm: bool, head: str, dropout: float):
    import torchvision
    from torch import nn

    c, h, w = input_shape
    require(head in HEADS, f"head must be one of {', '.join(HEADS)}, got '{head}'")
    require(h >= 32 and w >= 32, f"VGG16 halves the image 5 times and needs at least 32x32, got {h}x{w}")
    require(0.0 <= dropout < 1.0, f"dropout must be in [0, 1), got {dropout}")
    builder = torchvision.models.vgg16_bn if batchnorm else torchvision.models.vgg16
    model = builder(num_classes=num_classes, dropout=dropout)
    if c != 3:
        first = model.features[0]
        model.features[0] = nn.Conv2d(c, first.out_channels, 3, padding=1)
    if head == "cifar":
        model.avgpool = nn.AdaptiveAvgPool2d(1)
        model.classifier = nn.Linear(512, num_classes)
    return model


# torchvision's VGG: features.0 first, the classifier's last Linear as head, the children of features as blocks.
@register_model(
    "vgg16",
    family="vgg",
    description="VGG16 as torchvision builds it (head=cifar: small head)",
    anatomy=torchvision_anatomy,
)
def vgg16(input_shape, num_classes, *, head: str = "torchvision", dropout: float = 0.5):
    return _vgg(input_shape, num_classes, False, head, dropout)


@register_model(
    "vgg16_bn",
    family="vgg",
    description="VGG16 with batch norm, as torchvision builds it",
    anatomy=torchvision_anatomy,
)
def vgg16_bn(input_shape, num_classes, *, head: str = "torchvision", dropout: float = 0.5):
    return _vgg(input_shape, num_classes, True, head, dropout)
