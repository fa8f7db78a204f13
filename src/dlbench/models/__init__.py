"""Model registry: ``create_model(name, input_shape, num_classes, settings)``; see :mod:`._registry`.

Each family declares its anatomy (:func:`anatomy`); :func:`load_trained` rebuilds a trained model.
"""

from dlbench.models._registry import ModelSpec, create_model, get_model_spec, list_models, register_model
from dlbench.models.anatomy import Anatomy, anatomy
from dlbench.models.loading import LoadedModel, load_trained

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
