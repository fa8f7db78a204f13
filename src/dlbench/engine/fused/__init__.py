"""Fused trials (HFTA, MLSys 2021): K trials of one small model trained as one wider model on one device.

:mod:`.leaves` holds the fused twins of single layers (batched matrix products, grouped convolutions, per-trial
normalisation), which :mod:`.sequential` (mlp, cnn) and :mod:`.tree` (resnet18, VGG, MLP-Mixer) assemble into K
copies of one model, as :mod:`.families` says; :mod:`.optim` updates them with per-trial hyperparameters; :mod:`.step` and :mod:`.group` train
them with the engine's own epoch loop; :mod:`.train` is the entry point, one ordinary result per trial.
"""

from dlbench.engine.fused.families import unsupported_layer
from dlbench.engine.fused.group import GroupOutOfMemory
from dlbench.engine.fused.train import train_group

__all__ = ["GroupOutOfMemory", "train_group", "unsupported_layer"]
