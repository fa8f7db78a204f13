"""Train one config on one device. Knows nothing of the cache, sweeps or the CLI: progress leaves through
a callback, and the caller chooses where the checkpoint lives."""

from dlbench.engine.result import RunResult
from dlbench.engine.trainer import train

__all__ = ["RunResult", "train"]
