"""The result cache: :class:`Store` is the one door to every file under the cache root.

Layout under the cache root::

    SCHEMA                      {"schema": N}: refuse caches written by a newer dlbench
    runs/<key>.parquet          one row: status, config, summary, files, hyperparameter columns (columns.py)
                                (written LAST: its presence = complete)
    epochs/<key>.parquet        one row per epoch
    steps/<key>.parquet         subsampled per-step training loss
    grads/<key>.parquet         per epoch and layer: mean and max gradient norm
    predictions/<key>.parquet   per test sample: label, prediction, confidence
    checkpoints/<key>.pt        last finished epoch of a run in progress (deleted when it completes)
    weights/<key>.pt            final weights of a completed run
    sweeps/<name>.json          a sweep's definition: axes, fixed values, trial keys in order
    sweeps/<name>/              that sweep's figures
    slurm/<name>/               the Slurm jobs of that study: their record and logs (jobs.py)
    claims/<key>.claim          the process training that run now, with a heartbeat (see claims.py)
    figures/                    kernel, feature-map and equivariance figures, and index.parquet (figures.py)
    counts/<hash>.json          parameter-count tables recorded by `count-params` (counts.py)
    studies/<name>.json         what `study run` did: its sections in order and what each produced
    quarantine/                 damaged files moved aside, so the rest of the cache stays usable

Every file is written through :mod:`dlbench.atomic` (a temp name beside it, renamed into place), so a crash never
leaves half a file and readers never see one. The first write of a command reaps the temp files that killed
processes left in these folders, and only there: never a name dlbench does not write, never through a symlink.

A run counts as cached only if its ``runs`` row belongs to its key and every table, and the weights, match the
size and hash recorded in that row (see :mod:`dlbench.cache.integrity`). A damaged or misplaced file is moved to
``quarantine/`` (with the run's ``runs`` row, so the next `sweep` or `train` recomputes the run) and named in one
warning line. In a read-only cache (a shared mount of finished results) nothing is ever written: reading works,
and a damaged run is skipped with a warning instead.

The code: this module (runs, their tables, weights and checkpoints), :mod:`.root` (the folder, SCHEMA, cleanup,
quarantine), :mod:`.documents` (sweeps, figure index, count tables, study runs), :mod:`.integrity` (sizes and hashes),
:mod:`.weights` (torch files), :mod:`.queries` (runs as DataFrames), :mod:`.columns` (hyperparameter
columns), :mod:`.claims` (one trainer per run), :mod:`.jobs` (cluster jobs).

Test hook: ``DLBENCH_FAULT=cache-write[@N]`` kills this process (SIGKILL) halfway through writing its N-th
run file (the four tables, the weights, then the runs row), to test that a crash at that moment loses nothing.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from dlbench.atomic import write_bytes
from dlbench.cache.columns import hyperparameters, is_hyperparameter
from dlbench.cache.documents import Documents
from dlbench.cache.integrity import (
    Damage,
    check_file,
    check_footer,
    check_row,
    digest,
    entry,
    parse_files,
)
from dlbench.cache.jobs import ClusterJobs
from dlbench.cache.queries import RunQueries
from dlbench.cache.root import TABLES, CacheWarning
from dlbench.cache.weights import read_weights, write_weights
from dlbench.config import TrainConfig
from dlbench.errors import CacheError, RunNotFoundError

if TYPE_CHECKING:  # pandas is imported where a table is read or written (about 0.6 s)
    import pandas as pd

__all__ = ["TABLES", "CacheWarning", "Store"]


def _unrecorded() -> None:
    raise Damage("not recorded in its runs row")


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _parquet_row(row: dict) -> bytes:
    """A runs row as Parquet without what one row does not need: pandas' and Arrow's copies of the schema,
    column statistics and dictionaries. With its 70-odd columns it takes 9 KB instead of 47 KB."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(pd.DataFrame([row]), preserve_index=False).replace_schema_metadata(None)
    buf = io.BytesIO()
    pq.write_table(table, buf, use_dictionary=False, write_statistics=False, store_schema=False)
    return buf.getvalue()


class Store(RunQueries, Documents, ClusterJobs):
    """Every file under one cache root: runs and their tables, weights, checkpoints' location, claims (here),
    sweeps, figures and count tables (:class:`~dlbench.cache.documents.Documents`), the root itself, cleanup and
    quarantine (:class:`~dlbench.cache.root.CacheRoot`). Reading never writes; the first write prepares the root.
    """

    def __init__(self, root: Path):
        super().__init__(root)
        self._verified: dict[str, tuple] = {}  # key -> stat of its files when last found intact
        self._manifests: dict[str, dict | None] = {}  # key -> its runs row's files (None: a 0.1.0 run)
        self._warned: set[Path] = set()

    # -- layout ---------------------------------------------------------------------------------------------
    def path(self, table: str, key: str) -> Path:
        return self.root / table / f"{key}.parquet"

    def checkpoint_path(self, key: str) -> Path:
        return self.root / "checkpoints" / f"{key}.pt"

    def weights_path(self, key: str) -> Path:
        return self.root / "weights" / f"{key}.pt"

    def claim(self, key: str):
        """The claim of run ``key`` (not yet acquired): see :mod:`dlbench.cache.claims`."""
        from dlbench.cache.claims import Claim

        return Claim(self.root / "claims", key)

    # -- writing runs ---------------------------------------------------------------------------------------
    def save(self, config: TrainConfig, result, command: str = "") -> dict:
        """Store a finished run (ok, diverged or oom) and return its `runs` row.

        The tables and the weights are written first, each atomically, and their sizes and hashes recorded in
        the `runs` row, which is written last: a failure anywhere (a full disk is one :class:`WriteError`
        line) leaves no `runs` row, so the run is not complete and its checkpoint is kept for the rerun.
        """
        import pandas as pd

        self._ensure_root()
        key = config.key
        config_json = config.canonical_json()
        files = {}
        for name, records in (
            ("epochs", result.epochs),
            ("steps", result.steps),
            ("grads", result.grads),
            ("predictions", result.predictions or {}),
        ):
            df = pd.DataFrame(records)
            if len(df):
                df.insert(0, "key", key)
            data = _parquet(df)
            write_bytes(self.path(name, key), data, fault="cache-write")
            files[name] = entry(len(data), digest(data))
        if result.state_dict is not None:
            files["weights"] = write_weights(self.weights_path(key), result.state_dict)
        else:
            self.weights_path(key).unlink(missing_ok=True)  # never leave an older run's weights behind
        row = {
            "key": key,
            "status": result.status,
            "message": result.message,
            "model": config.model,
            "dataset": config.dataset,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "config": config_json,
            "command": command,  # the shell-quoted line that reproduces it (dlbench.resolve)
            "files": json.dumps(files, sort_keys=True),
            **result.summary,
            **hyperparameters(config_json),  # the config's values as columns, for readers of the files
        }
        write_bytes(self.path("runs", key), _parquet_row(row), fault="cache-write")
        self._verified.pop(key, None)
        self._manifests[key] = files
        self.checkpoint_path(key).unlink(missing_ok=True)
        return row

    def discard_checkpoint(self, key: str) -> None:
        """Delete run ``key``'s checkpoint if there is one and the cache can be written (else leave it)."""
        path = self.checkpoint_path(key)
        if path.exists() and not self.read_only(path.parent):
            path.unlink(missing_ok=True)

    # -- damage ---------------------------------------------------------------------------------------------
    def _damaged(self, path: Path, why: str, key: str | None = None) -> None:
        """Move a damaged file aside (with its run's ``runs`` row) and warn in one line.

        In a read-only cache nothing moves: the run is skipped with a warning (once per file and Store).
        """
        self._verified.pop(key or path.stem, None)
        if key and self._being_rewritten(key):
            return  # another process (`--force`) is replacing its files: not damage; it counts as missing
        if self.read_only() or self.read_only(path.parent):
            if path not in self._warned:
                self._warned.add(path)
                what = f"run {key}" if key else "it"
                warnings.warn(
                    f"{path} is {why}; skipped {what} (the cache is read-only, so nothing was moved)",
                    CacheWarning,
                    stacklevel=3,
                )
            return
        moved = self.quarantine(path)
        runs = self.path("runs", key) if key else path
        runs_moved = self.quarantine(runs) if runs != path else None
        if moved is None and runs_moved is None:  # another process set it aside first
            return
        self._manifests.pop(key or path.stem, None)
        done = f"moved it to {moved}" if moved else f"moved run {key}'s runs row to {runs_moved}"
        also = f" (and its runs row, so run {key} counts as missing)" if moved and runs_moved else ""
        warnings.warn(
            f"{path} is {why}; {done}{also}; run the same sweep or train command again to recompute that run",
            CacheWarning,
            stacklevel=3,
        )

    def _being_rewritten(self, key: str) -> bool:
        """Whether a live process holds run ``key``'s claim (only then are a run's files replaced)."""
        return self.claim(key).held_elsewhere()

    # -- reading runs ---------------------------------------------------------------------------------------
    def _read(self, path: Path, key: str | None = None, retry: bool = True) -> pd.DataFrame | None:
        """Read one table file; an unreadable one is damage (see :meth:`_damaged`). None if absent.

        When the run's recorded hashes are known, the bytes read are checked against them (no second read).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        expected = (self._manifests.get(key) or {}).get(path.parent.name) if key else None
        if expected is not None and (len(data), digest(data)) != (expected["size"], expected["sha256"]):
            self._manifests.pop(key, None)  # perhaps rewritten since by another process: look again
            self._verified.pop(key, None)
            return self._read(path, key, retry=False) if retry and self.has(key) else None
        try:
            return pq.read_table(pa.BufferReader(data)).to_pandas()
        except Exception as exc:
            self._damaged(path, f"unreadable ({type(exc).__name__})", key)
            return None

    def _row(self, key: str) -> dict | None:
        """The runs row of ``key`` as a dict, checked to belong to ``key``; None if absent or damaged."""
        path = self.path("runs", key)
        df = self._read(path, key)
        if df is None:
            return None
        if len(df) != 1:
            self._damaged(path, f"damaged ({len(df)} rows, not 1)", key)
            return None
        row = df.iloc[0].to_dict()
        try:
            check_row(row, key)
            self._manifests[key] = parse_files(row.get("files"))
        except Damage as exc:
            self._damaged(path, f"misplaced or damaged ({exc})", key)
            return None
        row = {k: v for k, v in row.items() if not is_hyperparameter(k)}
        return {**row, **hyperparameters(row["config"])}  # from the checked config, for old runs too

    def _head(self, key: str) -> dict | None:
        """The ``key``, ``config`` and ``files`` of run ``key``'s runs row, checked to belong to ``key``.

        Only these three columns are decoded, without pandas: about 10x cheaper than :meth:`_row`, which is
        what keeps :meth:`has` fast. None if absent or damaged (then set aside, see :meth:`_damaged`).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path("runs", key)
        try:
            reader = pq.ParquetFile(pa.BufferReader(path.read_bytes()))
            names = reader.schema_arrow.names
            wanted = [c for c in ("key", "config", "files") if c in names]
            rows = reader.read(columns=wanted, use_threads=False).to_pylist()
        except FileNotFoundError:
            return None
        except Exception as exc:
            self._damaged(path, f"unreadable ({type(exc).__name__})", key)
            return None
        try:
            if len(rows) != 1:
                raise Damage(f"{len(rows)} rows, not 1")
            check_row(rows[0], key)
            self._manifests[key] = parse_files(rows[0].get("files"))
        except Damage as exc:
            self._damaged(path, f"misplaced or damaged ({exc})", key)
            return None
        return rows[0]

    def _stat(self, key: str) -> tuple:
        out = []
        for p in (*(self.path(t, key) for t in TABLES), self.weights_path(key)):
            try:
                st = p.stat()
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def _intact(self, path: Path, key: str, check, what: str) -> bool:
        """Run ``check()`` on one file of run ``key``; a missing or damaged file is set aside (False)."""
        try:
            check()
        except FileNotFoundError:
            self._damaged(path, "missing", key)
            return False
        except Damage as exc:
            self._damaged(path, f"{what} ({exc})", key)
            return False
        return True

    def has(self, key: str) -> bool:
        """Whether run ``key`` is complete and intact (see :mod:`dlbench.cache.integrity`).

        A run found damaged or misplaced is quarantined with one warning line (skipped, in a read-only cache)
        and counts as missing. A run found intact is not hashed again by this Store until its files change.
        """
        if not self.path("runs", key).exists():
            return False
        stat = self._stat(key)
        if self._verified.get(key) == stat:
            return True
        if self._head(key) is None:
            return False
        files = self._manifests.get(key)
        for table in TABLES[1:]:
            path = self.path(table, key)
            if files is None:
                check = partial(check_footer, path, key)  # a 0.1.0 run: no hashes recorded
            elif table not in files:
                check = _unrecorded
            else:
                check = partial(check_file, path, files[table])
            if not self._intact(path, key, check, "damaged or misplaced"):
                return False
        if files is not None and "weights" in files:
            path = self.weights_path(key)
            check = partial(check_file, path, files["weights"], hash_it=False)  # hashed whenever loaded
            if not self._intact(path, key, check, "damaged"):
                return False
        self._verified[key] = stat
        return True

    def load_weights(self, key: str) -> dict:
        """The final weights of run ``key`` (a unique prefix is enough), hash-checked and loaded safely.

        Raises:
            RunNotFoundError: the run kept no weights (it diverged or ran out of memory).
            CacheError: the weights are damaged; they were moved aside with the run's ``runs`` row.
        """
        full = self.resolve_key(key)
        row = self.get(full)
        path = self.weights_path(full)
        redo = f"train it again with `{row.get('command')} --force`"
        try:
            return read_weights(path.read_bytes(), (self._manifests.get(full) or {}).get("weights"))
        except FileNotFoundError:
            raise RunNotFoundError(
                f"run {full} kept no weights (status {row.get('status')}); {redo}"
            ) from None
        except Damage as exc:
            self._damaged(path, f"damaged ({exc})", full)
            raise CacheError(f"the weights of run {full} in {path} are damaged ({exc}); {redo}") from None

    def get(self, key: str) -> dict:
        """The `runs` row of ``key`` (a unique prefix is enough)."""
        full = self.resolve_key(key)
        row = self._row(full)
        if row is None:
            raise RunNotFoundError(f"run {key} is not in the cache at {self.root}; see `dlbench runs`")
        return row

    def config(self, key: str) -> TrainConfig:
        return TrainConfig.from_json(self.get(key)["config"], run=key)

    def remove(self, key: str) -> None:
        """Delete run ``key`` (a unique prefix is enough): its runs row first, then its other files."""
        full = self.resolve_key(key)
        self.check_writable()
        self.path("runs", full).unlink(missing_ok=True)  # first: the run is no longer complete
        for name in TABLES[1:]:
            self.path(name, full).unlink(missing_ok=True)
        self.checkpoint_path(full).unlink(missing_ok=True)
        self.weights_path(full).unlink(missing_ok=True)
        self._verified.pop(full, None)
        self._manifests.pop(full, None)
