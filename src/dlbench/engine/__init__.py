"""Train one config on one device. Knows nothing of the cache, sweeps or the CLI: progress leaves through
a callback, and the caller chooses where the checkpoint lives."""

from dlbench.engine.checkpoint import CheckpointError, ResumeMismatch
from dlbench.engine.result import RunResult
from dlbench.engine.state import Stop, TrainState
from dlbench.engine.trainer import train

__all__ = ["CheckpointError", "ResumeMismatch", "RunResult", "Stop", "TrainState", "train"]
