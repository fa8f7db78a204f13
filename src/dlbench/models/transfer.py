"""Transfer learning: start from pretrained weights, then train all of a model, its head, or its last K blocks.

Where the starting weights come from (``TrainOptions``):

- ``init=pretrained`` on a ``tv:NAME`` model: torchvision's ``DEFAULT`` weights, fetched by torchvision's own
  download code into torch hub's checkpoint folder (offline: one error naming the file and the folder);
- ``weights=PATH``: a local state dict; ``from_run=KEY``: the final weights of a cached run (the CLI resolves
  the key to that run's weights file, so this module knows nothing of the cache).

The classifier head and the blocks are what the model's family declares (:mod:`dlbench.models.anatomy`). The
model is always built for the dataset's classes; a head (or auxiliary head) in the weights whose shape does not
fit is skipped, so it keeps its fresh initialisation ("replaced for the dataset's classes").

What ``finetune`` trains: ``full`` everything; ``linear-probe`` the head only; ``last-K`` the head and the last K
*blocks*. Blocks per family: ResNets (torchvision's and resnet18): the BasicBlocks/Bottlenecks in order (8 in
resnet18); torchvision models with a ``features`` Sequential (mobilenet, efficientnet, squeezenet, vgg, convnext,
densenet, swin, ...): its children with parameters; ViT: the encoder layers; MLP-Mixer: its Mixer blocks; mlp
and cnn: the top-level children with parameters, head excluded.
Frozen BatchNorm layers stay in eval mode while training, so their running statistics do not move either.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from dlbench.config import TrainOptions, finetune_blocks
from dlbench.errors import DlbenchError, UsageError
from dlbench.models._registry import TV_PREFIX, ModelSpec
from dlbench.models.anatomy import anatomy


class WeightsUnavailableError(DlbenchError):
    """Pretrained weights could not be downloaded or read; the message names the file and where to put it."""


class TransferWarning(UserWarning):
    pass


@dataclass(frozen=True)
class InputPlan:
    """What the model is fed: channels, size (None: the data's own) and normalisation (None: the data's)."""

    channels: int
    size: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None

    def input_shape(self, data_shape) -> tuple[int, int, int]:
        c, h, w = data_shape
        return (self.channels, self.size or h, self.size or w)


def tv_name(spec: ModelSpec) -> str | None:
    return spec.name[len(TV_PREFIX) :] if spec.name.startswith(TV_PREFIX) else None


def default_weights(name: str):
    """torchvision's DEFAULT weights enum member for ``name`` (metadata only, nothing downloaded), or None."""
    import torchvision

    try:
        return torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None


def uses_weight_metadata(spec: ModelSpec, opts: TrainOptions) -> bool:
    """A torchvision model starting from weights is fed what those weights expect (size, mean, std)."""
    return tv_name(spec) is not None and (opts.init == "pretrained" or bool(opts.weights))


def input_plan(spec: ModelSpec, opts: TrainOptions, data_shape) -> InputPlan:
    """Size and normalisation from the DEFAULT weights' transforms when they apply; ``input_size`` overrides."""
    channels, size, mean, std = data_shape[0], None, None, None
    if uses_weight_metadata(spec, opts):
        weights = default_weights(tv_name(spec))
        if weights is not None:
            t = weights.transforms()  # ImageClassification: crop_size, resize_size, mean, std
            crop = t.crop_size
            size = int(crop[0] if isinstance(crop, (list, tuple)) else crop)
            if opts.normalize:
                mean, std = tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)
            if channels == 1:
                channels = 3  # grey images repeated to the 3 channels the weights were trained on
    if opts.input_size:
        size = opts.input_size
    return InputPlan(channels, size, mean, std)


# -- the head and the blocks (declared by each family: see models.anatomy) ------------------------------------
def blocks(model: nn.Module, spec: ModelSpec) -> list[tuple[str, nn.Module]]:
    """The model's blocks in forward order, as ``last-K`` counts them."""
    return [(n, model.get_submodule(n)) for n in anatomy(model, spec).blocks]


# -- loading ---------------------------------------------------------------------------------------------------
def _download(spec: ModelSpec):
    """torchvision's DEFAULT weights through its own download code; offline: a WeightsUnavailableError."""
    import os
    from urllib.error import URLError

    name = tv_name(spec)
    weights = default_weights(name)
    if weights is None:
        raise UsageError(f"torchvision publishes no weights for {name}; use --init scratch or --weights PATH")
    filename = os.path.basename(weights.url)
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    try:
        return weights.get_state_dict(progress=False, check_hash=True), f"torchvision's {weights}"
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise WeightsUnavailableError(
            f"cannot download the pretrained weights of {spec.name} ({reason}); offline, fetch {weights.url} "
            f"elsewhere and place it as {os.path.join(folder, filename)} (folder {folder}; "
            "TORCH_HOME moves it), then rerun"
        ) from None
    except RuntimeError as exc:  # a truncated or tampered file: the hash check fails
        raise WeightsUnavailableError(
            f"the weights file {os.path.join(folder, filename)} is damaged ({exc}); delete it and rerun"
        ) from None


def _read_local(path: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot read weights file {path} ({type(exc).__name__}: {exc}); "
            "give a state dict saved with torch.save(model.state_dict(), PATH)"
        ) from None
    for wrapper in ("state_dict", "model"):  # common checkpoint layouts around a state dict
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsUnavailableError(
            f"{path} holds no state dict (name -> tensor); save one with torch.save(model.state_dict(), PATH)"
        )
    return state


def load_weights(model: nn.Module, state: dict, source: str, spec: ModelSpec) -> str:
    """Load ``state`` into ``model``; class layers whose shape differs keep their fresh initialisation.

    Returns a one-line note on keys that did not match (empty when only the head differed).
    """
    own = model.state_dict()
    heads = anatomy(model, spec).class_layers

    def in_head(key: str) -> bool:
        return any(key.startswith(h + ".") for h in heads)

    fitting, skipped = {}, []
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            if in_head(k):
                skipped.append(k)
                continue
            raise UsageError(
                f"{source} does not fit {spec.name}: '{k}' has shape {tuple(v.shape)} there and "
                f"{tuple(own[k].shape)} here; use weights saved from the same architecture"
            )
        fitting[k] = v
    if not any(k in own for k in fitting):
        raise UsageError(
            f"none of the {len(state)} tensors in {source} belongs to {spec.name} "
            f"(its first key: '{next(iter(state), '')}'); use weights of the same architecture"
        )
    missing, unexpected = model.load_state_dict(fitting, strict=False)
    missing = [k for k in missing if not in_head(k)]
    if not missing and not unexpected:
        return ""

    def some(keys):
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    note = (
        f"loaded {source} into {spec.name}: {len(missing)} missing keys ({some(missing)}), "
        f"{len(unexpected)} unexpected keys ({some(unexpected)}); missing ones keep their fresh initialisation"
    )
    warnings.warn(note, TransferWarning, stacklevel=2)
    return note


# -- freezing -------------------------------------------------------------------------------------------------
def apply_finetune(model: nn.Module, spec: ModelSpec, finetune: str) -> list[nn.Module]:
    """Set ``requires_grad`` for ``finetune``; returns the frozen BatchNorm layers (to keep in eval mode)."""
    k = finetune_blocks(finetune)
    if k is None:
        return []
    chosen = [model.get_submodule(anatomy(model, spec).head)]
    if k:
        found = blocks(model, spec)
        if k > len(found):
            raise UsageError(
                f"--finetune {finetune}: {spec.name} has {len(found)} blocks; "
                f"use at most last-{len(found)}, or full"
            )
        chosen += [m for _, m in found[-k:]]
    model.requires_grad_(False)
    trained = set()
    for m in chosen:
        m.requires_grad_(True)
        trained.update(id(sub) for sub in m.modules())
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in trained
    ]


def check_finetune(model: nn.Module, spec: ModelSpec, finetune: str, num_classes: int) -> None:
    """Validate ``finetune`` against a model's structure (a meta-device build is enough).

    Also checks that the head the family declares gives ``num_classes`` scores: a wrong declaration would
    otherwise freeze the real head.
    """
    if finetune_blocks(finetune) is not None:
        head = anatomy(model, spec).head
        out = (
            getattr(model.get_submodule(head), "out_features", None) or model.get_submodule(head).out_channels
        )
        if out != num_classes:
            raise UsageError(f"{spec.name}'s declared head {head} gives {out} outputs, not {num_classes}")
    apply_finetune(model, spec, finetune)


@dataclass
class Prepared:
    model: nn.Module
    inputs: InputPlan
    frozen_bn: list[nn.Module]
    note: str  # keys that did not match the weights, or ""


def prepare_model(
    spec: ModelSpec, opts: TrainOptions, data_shape, num_classes: int, settings: dict
) -> Prepared:
    """Build the model for the data, load its starting weights, and freeze what ``finetune`` leaves out."""
    inputs = input_plan(spec, opts, data_shape)
    model = spec.build(inputs.input_shape(data_shape), num_classes, settings)
    # Freeze first: a bad last-K fails before any download; loading copies into frozen parameters all the same.
    frozen_bn = apply_finetune(model, spec, opts.finetune)
    note = ""
    if opts.weights:
        source = f"run {opts.from_run}'s weights" if opts.from_run else f"weights file {opts.weights}"
        note = load_weights(model, _read_local(opts.weights), source, spec)
    elif opts.init == "pretrained":
        state, source = _download(spec)
        note = load_weights(model, state, source, spec)
    return Prepared(model, inputs, frozen_bn, note)
