"""A model to look inside, trained or untrained, rebuilt only through :func:`dlbench.models.load_trained`.

The analysis commands (visualize-kernels, equivariance) see the model exactly as its run trained it: built at the
run's input plan (channels, size, normalisation), fed through the engine's own uint8 -> float conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dlbench.models import load_trained
from dlbench.models.loading import LoadedModel as Built


@dataclass
class LoadedModel:
    """A model to look inside, rebuilt by :func:`dlbench.models.load_trained`, and where it came from."""

    built: Built
    source: str  # 'run KEY' or 'untrained (seed N)'
    key: str | None = None  # run key when trained

    @property
    def model(self) -> nn.Module:
        return self.built.model

    @property
    def family(self) -> str:
        return self.built.spec.family

    @property
    def name(self) -> str:
        return self.built.spec.name

    @property
    def dataset(self) -> str:
        return self.built.config.dataset

    @property
    def dataset_options(self) -> dict:
        return dict(self.built.config.dataset_options)

    @property
    def settings(self) -> dict:
        return dict(self.built.config.model_settings)

    @property
    def seed(self) -> int:
        return self.built.config.options.seed

    @property
    def input_shape(self) -> tuple:
        """(C, H, W) of the dataset's images, the uint8 images :meth:`to_input` takes."""
        return self.built.data_shape

    @property
    def model_input_shape(self) -> tuple:
        """(C, H, W) the model is fed (differs for tv: models and --input-size runs)."""
        return self.built.input_shape

    @property
    def normalize(self) -> bool:
        return self.built.normalize

    def to_input(self, x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (C, H, W) or (B, C, H, W) at the data's shape -> float model input, as training fed it."""
        return self.built.to_input(x_u8)

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] at the data's shape -> model input (for transforms applied in pixel space)."""
        return self.built.transform.from_unit(x)


def load_run(store, key: str, data_dir=None) -> LoadedModel:
    """The trained model of cached run ``key`` (a unique prefix is enough); its weights are read through the
    cache, which checks their hash and loads them safely (``weights_only``)."""
    full = store.resolve_key(key)
    config = store.config(full)
    state = store.load_weights(full)
    return LoadedModel(load_trained(config, state, data_dir=data_dir), f"run {full}", full)


def build_untrained(
    model: str, dataset: str, settings=None, dataset_options=None, seed: int = 0, data_dir=None
) -> LoadedModel:
    """A freshly initialised model, exactly as training with ``--seed seed`` would start it."""
    from dlbench.resolve import resolve_config

    config = resolve_config(model, dataset, settings, dataset_options, {"seed": seed})
    return LoadedModel(load_trained(config, data_dir=data_dir), f"untrained (seed {seed})")
