"""MLP-Mixer (Tolstikhin et al. 2021): patch embedding, then blocks that mix tokens and channels.

Defaults (patch 4, embed 256, 4 blocks, ratios 0.5 and 4.0) give 2,188,298 parameters on CIFAR-10.
The token-mixing MLP's hidden size is ``token_ratio * embed_dim`` and the channel MLP's is
``channel_ratio * embed_dim``, as in timm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.models._layers import positive, require
from dlbench.models._registry import register_model
from dlbench.models.anatomy import Anatomy

if TYPE_CHECKING:
    from dlbench.models.mixer_blocks import MlpMixer


def _anatomy(model: MlpMixer) -> Anatomy:
    """Patch embedding ``stem`` first, ``head`` last; blocks: the Mixer blocks; token mixing: each block's
    ``mlp_tokens.fc1``, whose weights over the tokens lie on the patch grid."""
    n = len(model.blocks)
    return Anatomy(
        "stem",
        "head",
        tuple(f"blocks.{i}" for i in range(n)),
        token_mixing=tuple(f"blocks.{i}.mlp_tokens.fc1" for i in range(n)),
    )


@register_model(
    "mlpmixer",
    family="mlpmixer",
    description="MLP-Mixer: patch embedding + token-mixing and channel-mixing MLP blocks",
    anatomy=_anatomy,
)
def mlpmixer(
    input_shape,
    num_classes,
    *,
    patch_size: int = 4,
    embed_dim: int = 256,
    num_blocks: int = 4,
    token_ratio: float = 0.5,
    channel_ratio: float = 4.0,
    drop_rate: float = 0.0,
):
    _, h, w = input_shape
    positive("patch_size", patch_size)
    positive("embed_dim", embed_dim)
    positive("num_blocks", num_blocks)
    require(
        h % patch_size == 0 and w % patch_size == 0,
        f"patch_size {patch_size} does not divide image size {h}x{w}; "
        f"choose one of {', '.join(str(d) for d in range(1, min(h, w) + 1) if h % d == 0 and w % d == 0)}",
    )
    require(token_ratio > 0 and channel_ratio > 0, "token_ratio and channel_ratio must be positive")
    require(int(token_ratio * embed_dim) >= 1, "token_ratio * embed_dim must be at least 1")
    require(0.0 <= drop_rate < 1.0, f"drop_rate must be in [0, 1), got {drop_rate}")
    from dlbench.models.mixer_blocks import MlpMixer

    return MlpMixer(
        input_shape, num_classes, patch_size, embed_dim, num_blocks, token_ratio, channel_ratio, drop_rate
    )
