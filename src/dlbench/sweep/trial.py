"""The one entry point for "a trial": train this config unless the cache already holds it, and store it.

:func:`run_trial` takes only picklable arguments (a config and two folders) and returns a plain dict, so an
executor can call it in another process or on another machine that sees the same cache folder.
:func:`run_trial_here` is the same code for a caller that already holds a :class:`~dlbench.cache.Store` and
wants more: a dataset loaded once for many trials, a progress callback, and ``wait=False`` (raise
:class:`TrialBusy` instead of waiting while another process trains the run).

Only the process holding a run's claim (``claims/<key>.claim``, see :mod:`dlbench.cache.claims`) trains it, so
several processes sharing one cache never train the same run at the same time. A checkpoint that cannot be
resumed from (damaged, unsafe, or not fitting the model) is moved to quarantine with a one-line warning and the
run starts over.

Test hook: ``DLBENCH_TRAIN_LOG=<file>`` appends ``<pid> <key> <event> <time>`` lines to that file, to count
trainings across processes: start, end, busy, lost, ``resumed-N`` (started after epoch N's checkpoint) and
``epoch-N`` (epoch N finished, after its checkpoint).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from dlbench.cache import Store
from dlbench.config import TrainConfig
from dlbench.resolve import reproduce_command


class TrialBusy(Exception):
    """Another live process holds the claim of this run (raised by ``run_trial_here(wait=False)``)."""

    def __init__(self, key: str, owner: dict | None = None):
        who = f"process {owner.get('pid')} on {owner.get('host')}" if owner else "another process"
        super().__init__(f"run {key} is being trained by {who}")
        self.key = key
        self.owner = owner


def poll_seconds() -> float:
    """Seconds between looks at a run another process is training (``DLBENCH_CLAIM_POLL``, default 1)."""
    try:
        return max(0.01, float(os.environ.get("DLBENCH_CLAIM_POLL", "1")))
    except ValueError:
        return 1.0


def log_event(key: str, event: str) -> None:
    """Test hook: one line per training event, appended atomically (O_APPEND, one write)."""
    path = os.environ.get("DLBENCH_TRAIN_LOG")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {key} {event} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


def check_checkpoint(store: Store, key: str) -> None:
    """Quarantine ``key``'s checkpoint, with a one-line CacheWarning, if it cannot be resumed from safely."""
    from dlbench.engine.checkpoint import CheckpointError, check_resume_state

    path = store.checkpoint_path(key)
    if not path.exists():
        return
    try:
        check_resume_state(path)
    except CheckpointError as exc:
        set_aside_checkpoint(store, path, exc)


def set_aside_checkpoint(store: Store, path: Path, exc: Exception) -> None:
    """Move a checkpoint that cannot be resumed from to quarantine, saying so in one line."""
    from dlbench.cache.store import CacheWarning

    moved = store.quarantine(path)
    reason = str(exc).split(" (", 1)[-1].split("; delete it")[0].rstrip(")")
    warnings.warn(
        f"checkpoint {path} cannot be resumed from ({reason}); moved it to {moved}; that run starts over",
        CacheWarning,
        stacklevel=3,
    )


def _train(config: TrainConfig, store: Store, data, data_dir: Path | None, callback):
    """Train, resuming from the run's checkpoint; one that does not fit the model is set aside once."""
    from dlbench.engine import train
    from dlbench.engine.checkpoint import CheckpointError

    path = store.checkpoint_path(config.key)
    try:
        return train(config, data, data_dir=data_dir, callback=callback, checkpoint_path=path)
    except CheckpointError as exc:
        if Path(exc.path).absolute() != path.absolute() or not path.exists():
            raise  # another file (a --weights source, say): not ours to move
        set_aside_checkpoint(store, path, exc)
    return train(config, data, data_dir=data_dir, callback=callback, checkpoint_path=path)


def run_trial(
    config: TrainConfig,
    cache_dir: str | Path,
    data_dir: str | Path | None = None,
    *,
    force: bool = False,
    resume: bool = False,
) -> dict:
    """Train ``config`` unless the cache folder holds it; picklable, for executors in other processes.

    Args:
        config: The resolved config of the trial.
        cache_dir: The cache folder (shared by every process of a study).
        data_dir: Where datasets live (None: the default data folder).
        force: Train again even if the cache holds the run.
        resume: With ``force``, continue from the run's checkpoint instead of starting over (a forced Slurm
            job requeued after its time limit: the checkpoint is its own earlier attempt's).

    Returns:
        The run's ``runs`` row (a dict: key, status, message, summary metrics, ...) plus ``cached``: True when
        the row came from the cache and nothing was trained.
    """
    data = Path(data_dir) if data_dir is not None else None
    row, cached = run_trial_here(config, Store(Path(cache_dir)), data_dir=data, force=force, resume=resume)
    return {**row, "cached": cached}


def run_trial_here(
    config: TrainConfig,
    store: Store,
    *,
    data_dir: Path | None = None,
    force: bool = False,
    callback=None,
    data=None,
    wait: bool = True,
    resume: bool = False,
) -> tuple[dict, bool]:
    """:func:`run_trial` in this process: returns (runs row, cached?).

    An interrupted run resumes from its checkpoint; ``force`` starts over (unless ``resume``). ``data`` is the loaded dataset when
    the caller shares one between trials (None: the engine loads it); ``callback`` receives the engine's
    progress events.

    If another live process is training this run, wait for it and return its result (``wait=True``), or raise
    :class:`TrialBusy` (``wait=False``) so a sweep can do its other trials first.
    """
    from dlbench.cache.claims import ClaimLost

    key = config.key
    if not force and store.has(key):
        if not store.claim(key).path.exists():  # a checkpoint left by a kill between the last two writes
            store.discard_checkpoint(key)  # never a write in a read-only cache
        return store.get(key), True
    store.check_writable()
    store._ensure_root()
    while True:
        claim = store.claim(key)
        if not claim.acquire():
            if not wait:
                log_event(key, "busy")
                raise TrialBusy(key, claim.owner())
            if not force and store.has(key):
                return store.get(key), True
            time.sleep(poll_seconds())
            continue
        try:
            if not force and store.has(key):  # finished by another process while we looked
                return store.get(key), True
            if force and not resume:
                store.checkpoint_path(key).unlink(missing_ok=True)
            check_checkpoint(store, key)

            def guarded(event: str, _claim=claim, **kw) -> None:
                if event == "epoch":  # after the epoch's checkpoint: stop if our claim was taken over
                    _claim.check()
                    log_event(key, f"epoch-{kw['epoch']}")
                elif event == "start" and kw.get("resumed"):
                    log_event(key, f"resumed-{kw['start_epoch']}")
                if callback is not None:
                    callback(event, **kw)

            log_event(key, "start")
            result = _train(config, store, data, data_dir, guarded)
            claim.check()
            row = store.save(config, result, command=reproduce_command(config))
            log_event(key, "end")
            return row, False
        except ClaimLost:
            log_event(key, "lost")
            if not wait:
                raise TrialBusy(key, claim.owner()) from None
            force = False  # the other process is training it now: take its result
        finally:
            claim.release()
