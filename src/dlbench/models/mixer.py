"""MLP-Mixer (Tolstikhin et al. 2021): patch embedding, then blocks that mix tokens and channels.

Defaults (patch 4, embed 256, 4 blocks, ratios 0.5 and 4.0) give 2,188,298 parameters on CIFAR-10.
The token-mixing MLP's hidden size is ``token_ratio * embed_dim`` and the channel MLP's is
``channel_ratio * embed_dim``, as in timm.
"""

from __future__ import annotations

from torch import nn

from dlbench.models._layers import positive, require
from dlbench.models._registry import register_model
from dlbench.models.anatomy import Anatomy


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class MixerBlock(nn.Module):
    def __init__(self, num_tokens: int, dim: int, token_hidden: int, channel_hidden: int, drop: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.mlp_tokens = Mlp(num_tokens, token_hidden, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp_channels = Mlp(dim, channel_hidden, drop)

    def forward(self, x):  # (B, tokens, dim)
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp_channels(self.norm2(x))


class MlpMixer(nn.Module):
    def __init__(self, input_shape, num_classes, patch_size, embed_dim, num_blocks, t_ratio, c_ratio, drop):
        super().__init__()
        c, h, w = input_shape
        self.grid = (h // patch_size, w // patch_size)
        num_tokens = self.grid[0] * self.grid[1]
        self.stem = nn.Conv2d(c, embed_dim, patch_size, stride=patch_size)
        self.blocks = nn.Sequential(
            *[
                MixerBlock(num_tokens, embed_dim, int(t_ratio * embed_dim), int(c_ratio * embed_dim), drop)
                for _ in range(num_blocks)
            ]
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, x):  # (B, C, H, W)
        x = self.stem(x).flatten(2).transpose(1, 2)  # (B, tokens, dim)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


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
    return MlpMixer(
        input_shape, num_classes, patch_size, embed_dim, num_blocks, token_ratio, channel_ratio, drop_rate
    )
