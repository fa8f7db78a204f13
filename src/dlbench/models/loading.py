"""The one way to rebuild a model as a run trained it: :func:`load_trained`.

It builds the model exactly as the engine did (the same ``input_plan``: channels, input size, mean and std;
the same seed before building), loads the run's final weights when given, and returns it in eval mode on the
CPU with :meth:`LoadedModel.to_input`, the engine's own uint8 -> float conversion
(:class:`dlbench.data.transforms.InputTransform`). The caller reads the weights (``models`` knows nothing of the
cache); with no weights it is the untrained model the run started from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dlbench.config import TrainConfig
from dlbench.data.transforms import InputTransform
from dlbench.errors import UsageError
from dlbench.models._registry import ModelSpec, get_model_spec
from dlbench.models.anatomy import Anatomy, anatomy
from dlbench.models.transfer import InputPlan, input_plan, prepare_model


@dataclass
class LoadedModel:
    """A rebuilt model (eval mode, CPU) and how it is fed."""

    model: nn.Module
    spec: ModelSpec
    config: TrainConfig
    info: object  # the dataset's DatasetInfo: data shape, classes, statistics
    inputs: InputPlan
    transform: InputTransform  # uint8 images of the data's shape -> model input

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the dataset's uint8 images."""
        return tuple(self.info.input_shape)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) the model is fed (the data's, or the transfer plan's channels and size)."""
        return self.transform.output_shape

    @property
    def mean(self) -> tuple[float, ...]:
        return self.transform.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.transform.std

    @property
    def normalize(self) -> bool:
        return self.config.options.normalize

    @property
    def anatomy(self) -> Anatomy:
        return anatomy(self.model, self.spec)

    def to_input(self, x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) or (C, H, W) of the data's shape -> float (B, C', H', W') as training fed it."""
        return self.transform(x_u8)


def load_trained(
    config: TrainConfig, state_dict: dict | None = None, *, data_info=None, data_dir=None
) -> LoadedModel:
    """Rebuild ``config``'s model as training built it, with ``state_dict`` loaded (None: untrained).

    Args:
        config: The run's resolved config.
        state_dict: The run's final weights (``Store.load_weights(key)``); None for the model as training with
            this config starts (its seed; pretrained weights too when the config starts from them).
        data_info: The dataset's ``DatasetInfo``; read from ``data_dir`` when not given.
        data_dir: Where the dataset lives (for its info only).

    Raises:
        UsageError: the weights do not fit the model (another architecture or a damaged file).
    """
    spec = get_model_spec(config.model)
    if data_info is None:
        from dlbench.data import get_dataset

        data_info = get_dataset(config.dataset).info(data_dir, config.dataset_options)
    shape, classes, opts = tuple(data_info.input_shape), data_info.num_classes, config.options
    torch.manual_seed(opts.seed)  # the engine seeds the same way before building: the same initial weights
    if state_dict is None:
        prepared = prepare_model(spec, opts, shape, classes, config.model_settings)
        model, inputs = prepared.model, prepared.inputs
    else:
        inputs = input_plan(spec, opts, shape)
        model = spec.build(inputs.input_shape(shape), classes, config.model_settings)
        try:
            model.load_state_dict(state_dict)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            raise UsageError(
                f"the weights do not fit {spec.name} built for {config.dataset} ({first}); "
                "retrain that run with --force"
            ) from None
    model.requires_grad_(False).eval()
    transform = InputTransform(
        shape,
        inputs.mean or data_info.mean,
        inputs.std or data_info.std,
        opts.normalize,
        size=inputs.size,
        channels=inputs.channels,
    )
    return LoadedModel(model, spec, config, data_info, inputs, transform)
