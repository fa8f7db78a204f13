"""What a model is made of, declared by its family beside the builder (as timm's ``default_cfg``/
``get_classifier`` do): the first layer, the classifier head, the blocks ``last-K`` fine-tuning counts, and
MLP-Mixer's token-mixing layers.

A registered family passes ``anatomy=fn(model) -> Anatomy`` to ``register_model``; torchvision models
(``tv:NAME``) follow torchvision's conventions (:func:`torchvision_anatomy`). Transfer learning and the kernel
figures read the anatomy instead of guessing the head by its output size or a layer by a name string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dlbench.errors import UsageError

if TYPE_CHECKING:  # torch is imported where a model is looked at, not where the registry is read
    from torch import nn


def _weighted() -> tuple[type, ...]:
    from torch import nn

    return (nn.Linear, nn.Conv2d)


@dataclass(frozen=True)
class Anatomy:
    """Module names (as in ``model.named_modules()``) of a model's parts.

    Attributes:
        first_layer: The first layer that reads the pixels (a convolution, or an MLP's first Linear).
        head: The classifier head: the last layer, whose outputs are the class scores.
        blocks: The blocks in forward order, as ``--finetune last-K`` counts them (head excluded).
        token_mixing: MLP-Mixer's token-mixing layers, first block first (empty for other models).
        aux_heads: Auxiliary classifier heads (torchvision's GoogLeNet/Inception), replaced like the head.
    """

    first_layer: str
    head: str
    blocks: tuple[str, ...]
    token_mixing: tuple[str, ...] = ()
    aux_heads: tuple[str, ...] = ()

    @property
    def class_layers(self) -> tuple[str, ...]:
        """Every layer whose outputs are class scores: auxiliary heads first, the head last."""
        return (*self.aux_heads, self.head)


def first_weighted(model: nn.Module, kinds: tuple[type, ...] = ()) -> str:
    """Name of the first Linear/Conv2d (or of ``kinds``) in definition order (the order builders create layers
    in)."""
    kinds = kinds or _weighted()
    for name, m in model.named_modules():
        if name and isinstance(m, kinds):
            return name
    raise UsageError(f"{type(model).__name__} has no Linear or Conv2d layer")


def last_weighted(model: nn.Module, prefix: str) -> str:
    """``prefix`` itself when it is a Linear/Conv2d, else the last Linear/Conv2d inside it."""
    module, weighted = model.get_submodule(prefix), _weighted()
    if isinstance(module, weighted):
        return prefix
    inner = [n for n, m in module.named_modules() if n and isinstance(m, weighted)]
    if not inner:
        raise UsageError(f"{type(model).__name__}.{prefix} holds no Linear or Conv2d layer")
    return f"{prefix}.{inner[-1]}"


def children_with_params(model: nn.Module, prefix: str = "", skip: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Names of the direct children of ``model.get_submodule(prefix)`` that hold parameters."""
    parent = model.get_submodule(prefix) if prefix else model
    dot = f"{prefix}." if prefix else ""
    return tuple(
        f"{dot}{n}"
        for n, m in parent.named_children()
        if f"{dot}{n}" not in skip and next(m.parameters(), None) is not None
    )


def sequential_anatomy(model: nn.Module) -> Anatomy:
    """A flat ``nn.Sequential`` ending in ``head`` (mlp, cnn): every child with parameters is a block."""
    return Anatomy(first_weighted(model), "head", children_with_params(model, skip=("head",)))


_TV_HEADS = ("fc", "classifier", "heads", "head")  # torchvision's names for the classifier, by family


def torchvision_anatomy(model: nn.Module) -> Anatomy:
    """torchvision's conventions: the head is ``fc`` (ResNet, RegNet, GoogLeNet...), ``classifier`` (VGG,
    MobileNet, EfficientNet, DenseNet, SqueezeNet...) or ``heads``/``head`` (ViT, Swin), its last Linear/Conv2d;
    blocks are the Bottlenecks/BasicBlocks of layer1..layer4, else the children of ``features``, else the
    encoder layers (ViT), else the top-level children with parameters."""
    from torch import nn

    owner = next((n for n in _TV_HEADS if isinstance(getattr(model, n, None), nn.Module)), None)
    if owner is None:
        raise UsageError(f"cannot find the classifier of {type(model).__name__}; use --finetune full")
    head = last_weighted(model, owner)
    aux = tuple(
        last_weighted(model, n)
        for n, _ in model.named_children()
        if n.lower().startswith(("aux", "auxlogits"))
    )
    if all(isinstance(getattr(model, f"layer{i}", None), nn.Sequential) for i in range(1, 5)):
        blocks = tuple(
            f"layer{i}.{n}" for i in range(1, 5) for n, _ in getattr(model, f"layer{i}").named_children()
        )
    elif isinstance(getattr(model, "features", None), nn.Sequential):
        blocks = children_with_params(model, "features")
    elif isinstance(getattr(getattr(model, "encoder", None), "layers", None), nn.Sequential):
        blocks = children_with_params(model, "encoder.layers")
    else:
        blocks = children_with_params(model, skip=(owner, *(a.split(".")[0] for a in aux)))
    return Anatomy(first_weighted(model), head, blocks, aux_heads=aux)


def anatomy(model: nn.Module, spec) -> Anatomy:
    """The anatomy of ``model``, built by ``spec`` (a ModelSpec, a model name or a family name)."""
    from dlbench.models._registry import ModelSpec, spec_for

    spec = spec if isinstance(spec, ModelSpec) else spec_for(spec)
    if spec is None or spec.anatomy is None:
        return torchvision_anatomy(model)
    return spec.anatomy(model)
