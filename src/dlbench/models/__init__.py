"""Model registry: ``create_model(name, input_shape, num_classes, settings)``; see :mod:`._registry`.

Each family declares its anatomy (:func:`anatomy`); :func:`load_trained` rebuilds a trained model. Reading the
registry (names, settings, defaults) imports no torch, so a run answered from the cache never loads it; building
a model does.
"""

from dlbench.models._registry import ModelSpec, create_model, get_model_spec, list_models, register_model
from dlbench.models.anatomy import Anatomy, anatomy


def __getattr__(name: str):
    if name in ("LoadedModel", "load_trained"):  # imports torch: only when a trained model is rebuilt
        from dlbench.models import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'dlbench.models' has no attribute '{name}'")


__all__ = [
    "Anatomy",
    "LoadedModel",
    "ModelSpec",
    "anatomy",
    "create_model",
    "get_model_spec",
    "list_models",
    "load_trained",
    "register_model",
]
