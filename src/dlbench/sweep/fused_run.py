"""Train a sweep's fused groups (every executor), each member claimed and stored as its own run.

A group claims every one of its trials (:mod:`dlbench.cache.claims`) before it trains; a trial that is cached
meanwhile or claimed by another process leaves the group and goes through the ordinary trial path afterwards,
as does every trial of a group that shrinks below two. Each member is stored with ``Store.save`` under its own
config's key, exactly as a run trained alone, its summary marking it ``fused`` (the group size). The group's
checkpoint, one file for all its members, lives under a key made from theirs, so the rerun of a killed sweep
(the same trials still missing) resumes the group; if the group changed, it starts over. A group that runs out
of device memory records nothing: its trials train alone (the group, not a trial, did not fit).

The inline executor trains the groups itself (:func:`run_fused`); the local and Slurm executors hand each group
to a worker or a job as one unit (:func:`work_units`), which trains it with :func:`run_group`.

Test hook: ``DLBENCH_TRAIN_LOG`` receives each member's events as :mod:`dlbench.sweep.trial` writes them.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path

from dlbench.cache import Store
from dlbench.config import TrainConfig
from dlbench.resolve import reproduce_command
from dlbench.sweep.fused import Fuse, describe, plan_groups
from dlbench.sweep.trial import log_event, set_aside_checkpoint


class FusionWarning(UserWarning):
    """A fused group fell back to training its trials one by one (shown by the CLI as one line)."""


def group_checkpoint(store: Store, configs: list[TrainConfig]) -> Path:
    keys = ",".join(c.key for c in configs)
    return store.checkpoint_path("fused-" + hashlib.sha256(keys.encode()).hexdigest()[:16])


def discard_stale_groups(store: Store) -> None:
    """Delete the checkpoints of groups that cannot form again: one of their members is stored (a sweep killed
    while it stored the group, its rerun grouping the rest anew). A file that cannot be read is quarantined."""
    from dlbench.engine.checkpoint import CheckpointError, load

    folder = store.root / "checkpoints"
    for path in sorted(folder.glob("fused-*.pt")) if folder.is_dir() else []:
        try:
            keys = load(path).get("group") or []
        except CheckpointError as exc:
            set_aside_checkpoint(store, path, exc)
            continue
        except AttributeError:
            keys = []
        if not keys or any(store.has(k) for k in keys):
            path.unlink(missing_ok=True)


def _claim_all(store: Store, configs: list[TrainConfig], force: bool) -> list:
    """The claims of the members still to train (released here for those that leave the group)."""
    claims = []
    for config in configs:
        if not force and store.has(config.key):
            continue
        claim = store.claim(config.key)
        if not claim.acquire():
            continue
        if not force and store.has(config.key):  # stored by another process while we looked
            claim.release()
            continue
        claims.append(claim)
    return claims


def _member_callback(key: str, claim) -> Callable:
    def callback(event: str, **kw) -> None:
        if event == "epoch":  # after the group's checkpoint: stop if this member's claim was taken over
            claim.check()
            log_event(key, f"epoch-{kw['epoch']}")
        elif event == "start" and kw.get("resumed"):
            log_event(key, f"resumed-{kw['start_epoch']}")

    return callback


def _train(configs, store: Store, data, data_dir, callbacks, progress):
    """train_group, resuming from the group's checkpoint; one that does not fit is set aside once."""
    from dlbench.engine.checkpoint import CheckpointError
    from dlbench.engine.fused import train_group

    path = group_checkpoint(store, configs)
    kw = dict(data_dir=data_dir, callbacks=callbacks, progress=progress, checkpoint_path=path)
    try:
        return train_group(configs, data, **kw)
    except CheckpointError as exc:
        if Path(exc.path).absolute() != path.absolute() or not path.exists():
            raise
        set_aside_checkpoint(store, path, exc)
    return train_group(configs, data, **kw)


def train_fused_group(
    configs: list[TrainConfig],
    store: Store,
    *,
    data=None,
    data_dir: Path | None = None,
    force: bool = False,
    progress: Callable | None = None,
    resume: bool = False,
) -> dict[str, dict]:
    """Claim, train and store a group; returns {key: runs row} of the members it trained (the others, if any,
    are for the ordinary trial path: cached, claimed elsewhere, or a group left with fewer than two).
    ``force`` starts the group over, unless ``resume`` (see :func:`dlbench.sweep.trial.run_trial`)."""
    from dlbench.cache.claims import ClaimLost
    from dlbench.engine.fused import GroupOutOfMemory

    store.check_writable()
    store._ensure_root()
    claims = _claim_all(store, configs, force)
    try:
        if len(claims) < 2:
            return {}
        members = [c for c in configs if any(cl.key == c.key for cl in claims)]
        path = group_checkpoint(store, members)
        if force and not resume:
            path.unlink(missing_ok=True)
        callbacks = [_member_callback(c.key, cl) for c, cl in zip(members, claims, strict=True)]
        for c in members:
            log_event(c.key, "start")
        rows: dict[str, dict] = {}
        try:
            results = _train(members, store, data, data_dir, callbacks, progress)
            for config, claim, result in zip(members, claims, results, strict=True):
                claim.check()
                rows[config.key] = store.save(config, result, command=reproduce_command(config))
                log_event(config.key, "end")
        except ClaimLost:  # another process took a member over: the rest go the ordinary way
            for c in members:
                if c.key not in rows:
                    log_event(c.key, "lost")
            return rows
        except GroupOutOfMemory as exc:  # the group did not fit, its trials may alone: the ordinary way
            warnings.warn(str(exc), FusionWarning, stacklevel=2)
            for c in members:
                log_event(c.key, "group-oom")
            return rows
        path.unlink(missing_ok=True)
        return rows
    finally:
        for claim in claims:
            claim.release()


def run_fused(plan, store: Store, fuse: Fuse, *, datasets, force: bool, data_dir, on_trial, record) -> None:
    """Train the fused groups of ``plan``'s trials that are not cached; ``record(k, row)`` takes each stored
    member's row (trial ``k`` of the plan). Trials left out are for the ordinary path."""
    discard_stale_groups(store)
    todo = [k for k, t in enumerate(plan.trials) if force or not store.has(t.config.key)]
    groups, _ = plan_groups([plan.trials[k].config for k in todo], fuse)
    for group in groups:
        ks = [todo[i] for i in group]
        configs = [plan.trials[k].config for k in ks]
        progress = on_trial(ks[0], plan.trials[ks[0]]) if on_trial else None
        rows = train_fused_group(
            configs,
            store,
            data=datasets.for_config(configs[0]),
            data_dir=data_dir,
            force=force,
            progress=progress,
        )
        for k in ks:
            if plan.trials[k].config.key in rows:
                record(k, rows[plan.trials[k].config.key])


def work_units(
    configs: list[TrainConfig], fuse: Fuse | None, here: bool = True
) -> tuple[list[list[int]], list[str]]:
    """What an executor hands out, as indices into ``configs``: the fused groups, then every other trial alone;
    and the lines for the user (how many fuse, why some run alone). ``fuse`` None or off: one by one.
    ``here`` False: the groups are for cluster nodes (:func:`dlbench.sweep.fused.plan_groups`)."""
    if fuse is None or fuse.off:
        return [[i] for i in range(len(configs))], []
    groups, notes = plan_groups(configs, fuse, here)
    grouped = {i for g in groups for i in g}
    lines = [line for line in (describe(groups), *notes) if line]
    return groups + [[i] for i in range(len(configs)) if i not in grouped], lines


def run_group(
    configs: list[TrainConfig], cache_dir: str, data_dir: str | None, force: bool, resume: bool = False
) -> list[dict]:
    """A fused group in a process of its own (a local worker, a Slurm job): trained with
    :func:`train_fused_group`; the members that left it (cached, claimed elsewhere) then go the ordinary way,
    one by one, in the same process. One row per config, in order, each with ``cached`` as
    :func:`dlbench.sweep.trial.run_trial` gives it."""
    from dlbench.sweep.trial import run_trial

    data = Path(data_dir) if data_dir is not None else None
    rows = train_fused_group(configs, Store(Path(cache_dir)), data_dir=data, force=force, resume=resume)
    return [
        {**rows[c.key], "cached": False}
        if c.key in rows
        else run_trial(c, cache_dir, data_dir, force=force, resume=resume)
        for c in configs
    ]
