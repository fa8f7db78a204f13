"""Model registry: ``create_model(name, input_shape, num_classes, settings)``; see :mod:`._registry`."""

from dlbench.models._registry import ModelSpec, create_model, get_model_spec, list_models, register_model

__all__ = ["ModelSpec", "create_model", "get_model_spec", "list_models", "register_model"]
