"""The epoch loop drives any Step: one loss per batch, or one per trial (as a fused engine's step returns)."""

from __future__ import annotations

import math

import torch

from dlbench.config import make_options
from dlbench.data import ArrayDataset
from dlbench.data._registry import DatasetInfo
from dlbench.engine.device_data import DeviceData
from dlbench.engine.loop import SYNC_EVERY, EpochLoop
from dlbench.engine.state import Stop, TrainState, after_epoch


class TrialsStep:
    """K losses per batch; trial k turns non-finite from step ``bad_from[k]`` on."""

    def __init__(self, bad_from):
        self.bad_from, self.calls, self.lrs = bad_from, 0, []

    def begin_epoch(self):
        self.calls = 0

    def __call__(self, xb, yb, lr):
        self.lrs.append(lr)
        loss = torch.tensor([math.nan if self.calls >= b else 1.0 for b in self.bad_from])
        self.calls += 1
        return loss, torch.full((len(self.bad_from),), yb.shape[0] // 2)


def _data(n=4 * 2 * SYNC_EVERY):  # batches of 4: two syncs per epoch
    info = DatasetInfo("grey", (1, 4, 4), 2, n, 8, ("a", "b"), (0.5,), (0.25,))
    x = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    y = torch.zeros(n, dtype=torch.long)
    opts = dict(val_split=0.0, train_subset=0, normalize=True, augment=False, channels_last=False)
    return DeviceData(ArrayDataset(info, x, y, x[:8], y[:8]), torch.device("cpu"), **opts)


def test_per_trial_losses_end_the_epoch_only_when_no_trial_is_finite():
    data = _data()
    opts = make_options({"batch_size": 4, "epochs": 2, "lr": 0.1, "schedule": "none"})
    events = []
    one_bad = EpochLoop(TrialsStep([10**9, 5]), data, opts, lambda e, **d: events.append((e, d)))
    stats = one_bad.train_epoch(0)
    assert len(stats.losses) == one_bad.steps_per_epoch and stats.correct == [data.train.x.shape[0] // 2] * 2
    first = next(d["loss"] for e, d in events if e == "step" and d["loss"] is not None)
    assert first[0] == 1.0 and math.isnan(first[1])  # one diverged trial does not end the epoch
    all_bad = EpochLoop(TrialsStep([7, 5]), data, opts, lambda e, **d: None)
    stats = all_bad.train_epoch(0)
    assert len(stats.losses) == SYNC_EVERY  # stopped at the first sync that found no finite loss
    assert all_bad.step.lrs == [0.1] * SYNC_EVERY


def test_the_stop_decision_keeps_the_best_and_counts_patience():
    state = TrainState("k")
    snap = iter([{"w": 1}, {"w": 2}])
    rec = {"epoch": 0, "val_acc": 0.5}
    assert after_epoch(state, rec, finite=True, patience=2, snapshot=lambda: next(snap)) is None
    assert state.best == {"val_acc": 0.5, "epoch": 0, "state": {"w": 1}}
    assert after_epoch(state, {**rec, "epoch": 1}, finite=True, patience=2, snapshot=None) is None
    assert after_epoch(state, {**rec, "epoch": 2}, finite=True, patience=2, snapshot=None) is Stop.EARLY_STOP
    assert after_epoch(state, rec, finite=False, patience=2, snapshot=None) is Stop.DIVERGED
    assert Stop.EARLY_STOP.status == "ok" and Stop.OOM.status == "oom"
    assert (
        after_epoch(
            TrainState("k"), {"epoch": 0, "val_acc": math.nan}, finite=True, patience=1, snapshot=None
        )
        is None
    )


def test_progress_moves_by_time_between_syncs_without_reading_the_loss(monkeypatch):
    import dlbench.engine.loop as loop

    monkeypatch.setattr(loop, "PROGRESS_SECONDS", 0.0)  # every step is "long enough ago"
    data = _data()
    opts = make_options({"batch_size": 4, "epochs": 1, "lr": 0.1, "schedule": "none"})
    events = []
    EpochLoop(TrialsStep([10**9, 5]), data, opts, lambda e, **d: events.append((e, d))).train_epoch(0)
    steps = [d for e, d in events if e == "step"]
    assert [d["step"] for d in steps[:3]] == [1, 2, 3] and steps[0]["loss"] is None
    assert all(d["loss"] is not None for d in steps if d["step"] % SYNC_EVERY == 0)
