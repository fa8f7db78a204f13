"""Fused trials (HFTA, MLSys 2021): K trials of one small model trained as one wider model on one device.

:mod:`.layers` stacks K copies of a sequential model (batched matrix products, grouped convolutions, per-trial
batch norm); :mod:`.optim` updates them with per-trial hyperparameters; :mod:`.step` and :mod:`.group` train
them with the engine's own epoch loop; :mod:`.train` is the entry point, one ordinary result per trial.
"""

from dlbench.engine.fused.group import GroupOutOfMemory
from dlbench.engine.fused.layers import unsupported_layer
from dlbench.engine.fused.train import train_group

__all__ = ["GroupOutOfMemory", "train_group", "unsupported_layer"]
