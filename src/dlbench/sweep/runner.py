"""Join the engine and the cache: a config already in the cache costs nothing; otherwise train and store it."""

from __future__ import annotations

from pathlib import Path

from dlbench.cache import Store
from dlbench.config import TrainConfig


def run_one(config: TrainConfig, store: Store, *, data_dir: Path | None = None, force: bool = False,
            callback=None, data=None) -> tuple[dict, bool]:
    """Return (runs row, cached?). An interrupted run resumes from its checkpoint; ``force`` starts over."""
    from dlbench.engine import train

    key = config.key
    if not force and store.has(key):
        return store.get(key), True
    if force:
        store.checkpoint_path(key).unlink(missing_ok=True)
    store._ensure_root()
    result = train(config, data, data_dir=data_dir, callback=callback, checkpoint_path=store.checkpoint_path(key))
    return store.save(config, result), False
