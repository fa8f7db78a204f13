"""The modules of MLP-Mixer (:mod:`.mixer` registers it; this module imports torch)."""

from __future__ import annotations

from torch import nn


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
