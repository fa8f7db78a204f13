"""Which model a look-inside command (`visualize-kernels`, `equivariance`) examines, as a typed value.

A ``ModelSource`` names a cached run, the cached run trained with some options, or a fresh initialisation of
a registry model; ``load_model`` turns it into a ``LoadedModel`` and ``source_args`` into the arguments of the
command that finds the same model again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlbench.commandline import CommandLine


def default_dataset(model: str) -> str:
    """The dataset a model is trained on when none is given (``shapes`` for ImageNet-shaped models)."""
    from dlbench.models import get_model_spec

    ds = get_model_spec(model).default_dataset
    return "shapes" if ds == "imagenet-shape" else ds


@dataclass(frozen=True)
class ModelSource:
    """A cached run (``run``, a key or unique prefix), or a registry ``model``: freshly initialised with ``seed``
    when ``untrained``, else the cached run trained with ``train_options``.

    ``settings`` and ``dataset_options`` are the NAME=VALUE pairs as given (strings or values).
    """

    run: str | None = None
    model: str | None = None
    dataset: str | None = None
    settings: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    untrained: bool = False
    seed: int = 0
    train_options: dict = field(default_factory=dict)


def load_model(store, source: ModelSource, data_root: Path | None):
    """The model ``source`` names, ready for inspection (eval mode).

    Raises:
        RunNotFoundError: No cached run matches the key, or no run was trained with these options (the message
            gives the `dlbench train` command that trains it).
    """
    from dlbench.analysis.kernels import build_untrained, load_run

    if source.run:
        return load_run(store, source.run, data_root)
    dataset = source.dataset or default_dataset(source.model)
    if source.untrained:
        return build_untrained(
            source.model, dataset, source.settings, source.dataset_options, source.seed, data_root
        )
    from dlbench.errors import RunNotFoundError
    from dlbench.resolve import reproduce_command, resolve_config

    config = resolve_config(
        source.model, dataset, source.settings, source.dataset_options, source.train_options
    )
    if not store.has(config.key):
        raise RunNotFoundError(
            f"no cached run of {config.model} on {config.dataset} with these options (key {config.key}); "
            f"train it first: `{reproduce_command(config)}`, or add --untrained"
        )
    return load_run(store, config.key, data_root)


def source_args(command: CommandLine, loaded, source: ModelSource, *, untrained_flag: bool) -> CommandLine:
    """Add to ``command`` the arguments that select ``loaded`` again: its run key when it was trained, else how
    it was built (``--untrained`` first when the command has that flag)."""
    if loaded.key:
        return command.opt("--run", loaded.key)
    command.flag("--untrained", untrained_flag).opt("--model", loaded.name).opt("--dataset", loaded.dataset)
    command.opts("--set", [f"{k}={v}" for k, v in sorted(source.settings.items())])
    command.opts("--dataset-opt", [f"{k}={v}" for k, v in sorted(source.dataset_options.items())])
    return command.opt("--seed", loaded.seed)
