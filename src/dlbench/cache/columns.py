"""A run's hyperparameters as flat columns of its ``runs`` row, for anyone who reads the Parquet files.

A run's identity is its ``config`` column: canonical JSON, hashed to the run key. The same values are also
written out, one column each, so that pandas, polars or DuckDB can filter and group by them without parsing
JSON (docs/data.md):

- ``opt_<name>``: every training option, defaults included (``opt_lr``, ``opt_batch_size``, ...);
  ``opt_transfer`` is the label of the (``opt_init``, ``opt_finetune``) pair. The ``device`` option is not a
  column: ``device_kind`` (cpu, cuda, mps) is what a run's identity holds.
- ``set_<name>``: each model setting (``set_width``, ``set_activation``); a list value reads as it is written
  on the command line, its items joined by ``/`` (``set_channels`` = ``16/32/64``; none: an empty string).
- ``data_<name>``: each dataset option (``data_train_size``, ``data_image_size``).

:meth:`Store.save <dlbench.cache.Store.save>` writes them with each new run. Reading derives them again from
the ``config`` column of every row (:func:`with_hyperparameters`): runs written before these columns existed
show them too, and what dlbench shows always agrees with the config that the run's key was checked against.
The columns are not part of a run's identity or of its integrity record: the key and the ``files`` hashes
stay what they were.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dlbench.config import TrainConfig
from dlbench.errors import CacheError

if TYPE_CHECKING:  # pandas is imported where a table is read, not with the cache (a cache hit needs none)
    import pandas as pd

PREFIXES = ("opt_", "set_", "data_")
EXTRA = ("device_kind",)


def _cell(value: Any) -> Any:
    """A setting as one Parquet cell: scalars as they are, a list as its command-line spelling."""
    if isinstance(value, list | tuple):
        return "/".join(str(_cell(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


@lru_cache(maxsize=4096)
def _derived(config_json: str) -> tuple[tuple[str, Any], ...]:
    try:
        config = TrainConfig.from_json(config_json)
    except CacheError:  # written by a newer dlbench: nothing to derive (reading its config says why)
        return ()
    options = dataclasses.asdict(config.options)
    options.pop("device")
    cols = [(f"opt_{k}", v) for k, v in sorted(options.items())]
    cols += [(f"set_{k}", _cell(v)) for k, v in sorted(config.model_settings.items())]
    cols += [(f"data_{k}", _cell(v)) for k, v in sorted(config.dataset_options.items())]
    cols.append(("device_kind", config.device_kind))
    return tuple(cols)


def hyperparameters(config_json: str) -> dict[str, Any]:
    """The flat hyperparameter columns of a run whose ``config`` column is ``config_json``.

    Args:
        config_json: The canonical config JSON of a runs row.

    Returns:
        ``{column: value}`` in a stable order (options, model settings, dataset options, device kind);
        empty for a config this dlbench cannot read (a newer version's).
    """
    return dict(_derived(config_json))


def is_hyperparameter(column: str) -> bool:
    """Whether ``column`` of a runs table is one of the derived hyperparameter columns."""
    return column.startswith(PREFIXES) or column in EXTRA


def with_hyperparameters(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (runs rows) with its hyperparameter columns derived again from each row's ``config``.

    Stored hyperparameter columns are replaced, so old runs (none stored) and new runs read alike; a column
    holds a missing value for a run that has no such setting (``set_width`` of a model without a width).
    """
    if df.empty or "config" not in df.columns:
        return df
    import pandas as pd

    derived = pd.DataFrame([hyperparameters(c) for c in df["config"]], index=df.index)
    kept = df[[c for c in df.columns if not is_hyperparameter(c)]]
    return pd.concat([kept, derived], axis=1)
