"""Model registry: a decorator fills one dict; ``create_model`` builds by name.

A builder is ``fn(input_shape, num_classes, **settings) -> nn.Module`` where ``input_shape`` is
``(channels, height, width)``. Its keyword defaults *are* the family's settings: their types drive the
parsing of ``--set NAME=VALUE`` strings, so there is one source of truth for names, defaults and types.
Torchvision classification models are reachable as ``tv:NAME`` without being registered one by one.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dlbench.errors import InvalidSettingError, UnknownNameError
from dlbench.settings import canon_key, coerce

TV_PREFIX = "tv:"
# torchvision builds these with training-only auxiliary classifiers. Their defaults follow torchvision's published
# models: googlenet's weights drop the aux heads (6,624,904 parameters), inception_v3's keep them (27,161,264).
AUX_HEADS = {"googlenet": {"aux_logits": False}, "inception_v3": {"aux_logits": True}}


def _main_logits(_module, _inputs, output):
    """Forward hook: in training mode these models return (logits, aux logits...); dlbench trains the main head
    (the auxiliary heads get no gradient) and every consumer sees one logits tensor."""
    return getattr(output, "logits", output)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    description: str
    builder: Callable[..., Any]
    default_dataset: str = "cifar10"
    conv: bool = True  # convolutional: trained channels_last, has kernels to visualise
    defaults: dict[str, Any] = field(default_factory=dict)
    open_settings: bool = False  # torchvision builders take arbitrary keyword arguments
    anatomy: Callable[[Any], Any] | None = None  # model -> models.anatomy.Anatomy (None: torchvision's rules)

    def resolve(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Merge ``settings`` (raw strings or values) over the defaults, typed and validated by name."""
        out = dict(self.defaults)
        for key, raw in (settings or {}).items():
            key = canon_key(key)
            if key not in self.defaults and not self.open_settings:
                valid = ", ".join(sorted(self.defaults)) or "none"
                raise InvalidSettingError(
                    f"unknown setting '{key}' for model '{self.name}'; valid settings: {valid}"
                )
            out[key] = coerce(key, raw, self.defaults.get(key))
        return out

    def build(self, input_shape, num_classes: int, settings: dict[str, Any] | None = None):
        resolved = self.resolve(settings)
        try:
            return self.builder(tuple(input_shape), int(num_classes), **resolved)
        except TypeError as exc:  # a torchvision builder rejecting a keyword
            if self.open_settings:
                raise InvalidSettingError(f"model '{self.name}' rejected its settings: {exc}") from exc
            raise


_MODELS: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    family: str,
    description: str,
    anatomy: Callable[[Any], Any],
    default_dataset: str = "cifar10",
    conv: bool = True,
):
    """Decorator: register ``fn(input_shape, num_classes, **settings)`` under ``name``.

    ``anatomy(model) -> Anatomy`` declares the model's first layer, head and blocks (see :mod:`.anatomy`).
    """

    def wrap(fn):
        if name in _MODELS:
            raise ValueError(f"model '{name}' is registered twice")
        params = inspect.signature(fn).parameters
        defaults = {
            k: p.default
            for k, p in params.items()
            if p.default is not inspect.Parameter.empty and p.kind == p.KEYWORD_ONLY
        }
        _MODELS[name] = ModelSpec(
            name, family, description, fn, default_dataset, conv, defaults, anatomy=anatomy
        )
        return fn

    return wrap


def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _tv_spec(tv_name: str) -> ModelSpec:
    from dlbench.models.anatomy import torchvision_anatomy

    names = _torchvision_names()
    if tv_name not in names:
        raise UnknownNameError("torchvision model", tv_name, names, hint="torchvision classification models")

    def build(input_shape, num_classes, **kwargs):
        import torchvision

        if input_shape[0] != 3:
            raise InvalidSettingError(
                f"tv:{tv_name} expects 3-channel images, the dataset has {input_shape[0]}; "
                "use an RGB dataset or a registry model (mlp, cnn, resnet18, ...)"
            )
        if (
            tv_name in AUX_HEADS
        ):  # as torchvision publishes them; init_weights given silences its FutureWarning
            kwargs = {**AUX_HEADS[tv_name], "init_weights": True, **kwargs}
        model = torchvision.models.get_model(tv_name, num_classes=num_classes, **kwargs)
        if tv_name in AUX_HEADS:
            model.register_forward_hook(_main_logits)
        return model

    conv = not tv_name.startswith(("vit_", "swin_", "maxvit"))
    return ModelSpec(
        TV_PREFIX + tv_name,
        "torchvision",
        f"torchvision's {tv_name}, built by torchvision.models.get_model",
        build,
        default_dataset="imagenet-shape",
        conv=conv,
        defaults={},
        open_settings=True,
        anatomy=torchvision_anatomy,
    )


def get_model_spec(name: str) -> ModelSpec:
    _load_families()
    if name.startswith(TV_PREFIX):
        return _tv_spec(name[len(TV_PREFIX) :])
    if name in _MODELS:
        return _MODELS[name]
    raise UnknownNameError(
        "model", name, list(_MODELS), hint="see `dlbench models`; torchvision models are tv:NAME"
    )


def spec_for(name_or_family: str) -> ModelSpec | None:
    """The spec of a model name, or of the first registered model of a family name; None if neither."""
    _load_families()
    if name_or_family.startswith(TV_PREFIX) or name_or_family in _MODELS:
        return get_model_spec(name_or_family)
    return next((s for s in _MODELS.values() if s.family == name_or_family), None)


def list_models(pattern: str | None = None, torchvision: bool = True) -> list[ModelSpec]:
    """Registered models, then (if ``torchvision``) every torchvision classifier as ``tv:NAME``."""
    _load_families()
    specs = [_MODELS[n] for n in sorted(_MODELS)]
    if torchvision:
        specs += [_tv_spec(n) for n in _torchvision_names()]
    if pattern:
        pat = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
        specs = [s for s in specs if fnmatch.fnmatch(s.name, pat) or fnmatch.fnmatch(s.family, pat)]
    return specs


def create_model(name: str, input_shape=(3, 32, 32), num_classes: int = 10, settings=None):
    """Build model ``name`` for images of ``input_shape`` = (C, H, W) and ``num_classes`` classes."""
    return get_model_spec(name).build(input_shape, num_classes, settings)


def _load_families() -> None:
    # Importing the family modules runs their @register_model decorators.
    from dlbench.models import cnn, mixer, mlp, resnet, vgg  # noqa: F401
