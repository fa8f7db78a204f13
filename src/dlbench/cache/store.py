"""The result cache: :class:`Store` is the one door to every file under the cache root.

Layout under the cache root::

    SCHEMA                      {"schema": N}: refuse caches written by a newer dlbench
    runs/<key>.parquet          one row: status, config, summary, files (written LAST: its presence = complete)
    epochs/<key>.parquet        one row per epoch
    steps/<key>.parquet         subsampled per-step training loss
    grads/<key>.parquet         per epoch and layer: mean and max gradient norm
    predictions/<key>.parquet   per test sample: label, prediction, confidence
    checkpoints/<key>.pt        last finished epoch of a run in progress (deleted when it completes)
    weights/<key>.pt            final weights of a completed run
    sweeps/<name>.json          a sweep's definition: axes, fixed values, trial keys in order
    sweeps/<name>/              that sweep's figures
    claims/<key>.claim          the process training that run now, with a heartbeat (see claims.py)
    figures/                    kernel, feature-map and equivariance figures, and index.parquet (figures.py)
    counts/<hash>.json          parameter-count tables recorded by `count-params` (counts.py)
    quarantine/                 damaged files moved aside, so the rest of the cache stays usable

Every file is written through :mod:`dlbench.atomic` (a temp name beside it, renamed into place), so a crash never
leaves half a file and readers never see one. The first write of a command reaps the temp files that killed
processes left in these folders, and only there: never a name dlbench does not write, never through a symlink.

A run counts as cached only if its ``runs`` row belongs to its key and every table, and the weights, match the
size and hash recorded in that row (see :mod:`dlbench.cache.integrity`). A damaged or misplaced file is moved to
``quarantine/`` (with the run's ``runs`` row, so the next `sweep` or `train` recomputes the run) and named in one
warning line. In a read-only cache (a shared mount of finished results) nothing is ever written: reading works,
and a damaged run is skipped with a warning instead.

Test hook: ``DLBENCH_FAULT=cache-write[@N]`` kills this process (SIGKILL) halfway through writing its N-th
run file (the four tables, the weights, then the runs row), to test that a crash at that moment loses nothing.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from pathlib import Path

import pandas as pd

from dlbench.atomic import reap, write_atomic, write_bytes, write_text
from dlbench.cache import counts as _counts
from dlbench.cache import figures as _figures
from dlbench.cache.integrity import (
    Damage,
    HashingWriter,
    check_file,
    check_footer,
    check_row,
    digest,
    entry,
    parse_files,
)
from dlbench.config import SCHEMA_VERSION, TrainConfig
from dlbench.errors import CacheError, RunNotFoundError, UsageError

TABLES = ("runs", "epochs", "steps", "grads", "predictions")
FOLDERS = ("checkpoints", "weights", "sweeps", "claims", "figures", "counts")  # besides the TABLES


class CacheWarning(UserWarning):
    pass


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


class Store:
    """Every file under one cache root. Reading never writes; the first write prepares the root."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._check_not_a_file()
        self._check_schema()
        self._prepared = False  # root made, SCHEMA written, abandoned temp files reaped
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

    @property
    def figures_dir(self) -> Path:
        """Where kernel, feature-map and equivariance figures go unless ``--out`` says otherwise."""
        return self.root / "figures"

    def claim(self, key: str):
        """The claim of run ``key`` (not yet acquired): see :mod:`dlbench.cache.claims`."""
        from dlbench.cache.claims import Claim

        return Claim(self.root / "claims", key)

    def _check_not_a_file(self) -> None:
        """A cache folder that is (or lies under) a file can be neither read nor written: say so now."""
        for p in (self.root, *self.root.parents):
            if p.exists():
                if not p.is_dir():
                    raise UsageError(
                        f"cannot use {self.root} as the cache folder: {p} is a file; "
                        "choose another --cache-dir or DLBENCH_HOME"
                    )
                return

    def check_writable(self) -> None:
        """Raise UsageError (writing nothing) unless the cache folder exists writable or can be created."""
        self._check_not_a_file()
        for p in (self.root, *self.root.parents):
            if p.exists():
                if not os.access(p, os.W_OK | os.X_OK):
                    raise UsageError(
                        f"cannot write the cache folder {self.root} ({p} is read-only); "
                        "choose a writable --cache-dir or DLBENCH_HOME"
                    )
                return

    def read_only(self, folder: Path | None = None) -> bool:
        """Whether ``folder`` (default: the root) exists and cannot be written (e.g. a read-only mount)."""
        folder = self.root if folder is None else folder
        return folder.exists() and not os.access(folder, os.W_OK | os.X_OK)

    def _check_schema(self) -> None:
        marker = self.root / "SCHEMA"
        if marker.exists():
            try:
                found = json.loads(marker.read_text())["schema"]
                if not isinstance(found, int) or isinstance(found, bool):
                    raise ValueError(found)
            except Exception:
                raise CacheError(
                    f"{marker} is unreadable; delete it and dlbench will write it again"
                ) from None
            if found > SCHEMA_VERSION:
                raise CacheError(
                    f"the cache at {self.root} was written by a newer dlbench (schema {found}, this one reads "
                    f"{SCHEMA_VERSION}); upgrade dlbench or choose another --cache-dir"
                )

    def _ensure_root(self) -> None:
        """Before this Store's first write: make the root, write SCHEMA, reap abandoned temp files."""
        if self._prepared:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the cache folder {self.root} ({exc.strerror}); "
                "choose a writable --cache-dir or DLBENCH_HOME"
            ) from None
        marker = self.root / "SCHEMA"
        if not marker.exists():
            write_text(marker, json.dumps({"schema": SCHEMA_VERSION}))
        self.clean_tmp()
        self._prepared = True

    def clean_tmp(self) -> int:
        """Remove temp files killed dlbench processes left, in dlbench's own folders only; returns how many.

        Only the names :func:`dlbench.atomic.tmp_path` makes are removed (a user's ``.notes.tmp`` stays), only
        directly in the root, the table folders, ``checkpoints``, ``weights``, ``sweeps`` and each sweep's
        figure folder, ``claims``, ``figures`` and ``counts``, and never in or through a symlinked folder.
        """
        root = self.root.resolve()
        folders = [root, *(root / t for t in TABLES), *(root / f for f in FOLDERS)]
        sweeps = root / "sweeps"
        if sweeps.is_dir() and not sweeps.is_symlink():
            with os.scandir(sweeps) as entries:
                folders += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        return sum(reap(folder) for folder in folders)

    # -- writing runs ---------------------------------------------------------------------------------------
    def save(self, config: TrainConfig, result) -> dict:
        """Store a finished run (ok, diverged or oom) and return its `runs` row.

        The tables and the weights are written first, each atomically, and their sizes and hashes recorded in
        the `runs` row, which is written last: a failure anywhere (a full disk is one :class:`WriteError`
        line) leaves no `runs` row, so the run is not complete and its checkpoint is kept for the rerun.
        """
        self._ensure_root()
        key = config.key
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
            files["weights"] = self._write_weights(key, result.state_dict)
        else:
            self.weights_path(key).unlink(missing_ok=True)  # never leave an older run's weights behind
        row = {
            "key": key,
            "status": result.status,
            "message": result.message,
            "model": config.model,
            "dataset": config.dataset,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "config": config.canonical_json(),
            "command": config.command(),
            "files": json.dumps(files, sort_keys=True),
            **result.summary,
        }
        write_bytes(self.path("runs", key), _parquet(pd.DataFrame([row])), fault="cache-write")
        self._verified.pop(key, None)
        self._manifests[key] = files
        self.checkpoint_path(key).unlink(missing_ok=True)
        return row

    def _write_weights(self, key: str, state: dict) -> dict:
        import torch

        seen: list[HashingWriter] = []

        def write(f) -> None:
            seen.append(HashingWriter(f))
            try:
                torch.save(state, seen[-1])
            except RuntimeError:
                if seen[-1].error is not None:  # a full disk, disguised by torch's zip writer
                    raise seen[-1].error from None
                raise

        write_atomic(self.weights_path(key), write, fault="cache-write")
        return entry(seen[-1].size, seen[-1].hexdigest)

    def discard_checkpoint(self, key: str) -> None:
        """Delete run ``key``'s checkpoint if there is one and the cache can be written (else leave it)."""
        path = self.checkpoint_path(key)
        if path.exists() and not self.read_only(path.parent):
            path.unlink(missing_ok=True)

    # -- damage ---------------------------------------------------------------------------------------------
    def quarantine(self, path: Path) -> Path | None:
        """Move ``path`` to quarantine/ (None if it is already gone); never overwrites an earlier one."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        dest = self.root / "quarantine" / f"{path.parent.name}-{stamp}-{os.getpid()}-{path.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, dest)
        except FileNotFoundError:
            return None
        return dest

    def _damaged(self, path: Path, why: str, key: str | None = None) -> None:
        """Move a damaged file aside (with its run's ``runs`` row) and warn in one line.

        In a read-only cache nothing moves: the run is skipped with a warning (once per file and Store).
        """
        self._verified.pop(key or path.stem, None)
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
        return row

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
            try:
                if files is None:
                    check_footer(path, key)
                elif table not in files:
                    raise Damage("not recorded in its runs row")
                else:
                    check_file(path, files[table])
            except FileNotFoundError:
                self._damaged(path, "missing", key)
                return False
            except Damage as exc:
                self._damaged(path, f"damaged or misplaced ({exc})", key)
                return False
        if files is not None and "weights" in files:
            path = self.weights_path(key)
            try:
                check_file(path, files["weights"], hash_it=False)  # hashed whenever loaded
            except FileNotFoundError:
                self._damaged(path, "missing", key)
                return False
            except Damage as exc:
                self._damaged(path, f"damaged ({exc})", key)
                return False
        self._verified[key] = stat
        return True

    def load_weights(self, key: str) -> dict:
        """The final weights of run ``key`` (a unique prefix is enough), hash-checked and loaded safely.

        Raises:
            RunNotFoundError: the run kept no weights (it diverged or ran out of memory).
            CacheError: the weights are damaged; they were moved aside with the run's ``runs`` row.
        """
        import torch

        full = self.resolve_key(key)
        row = self.get(full)
        path = self.weights_path(full)
        redo = f"train it again with `{row.get('command')} --force`"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RunNotFoundError(
                f"run {full} kept no weights (status {row.get('status')}); {redo}"
            ) from None
        expected = (self._manifests.get(full) or {}).get("weights")
        try:
            if expected and (len(data), digest(data)) != (expected["size"], expected["sha256"]):
                raise Damage("their content hash differs from the one recorded")
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise Damage(f"a {type(state).__name__}, not a state dict")
        except Exception as exc:
            why = str(exc) if isinstance(exc, Damage) else f"{type(exc).__name__}: cannot be loaded safely"
            self._damaged(path, f"damaged ({why})", full)
            raise CacheError(f"the weights of run {full} in {path} are damaged ({why}); {redo}") from None
        return state

    def get(self, key: str) -> dict:
        """The `runs` row of ``key`` (a unique prefix is enough)."""
        full = self.resolve_key(key)
        row = self._row(full)
        if row is None:
            raise RunNotFoundError(f"run {key} is not in the cache at {self.root}; see `dlbench runs`")
        return row

    def keys(self) -> list[str]:
        folder = self.root / "runs"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.parquet"))

    def resolve_key(self, key: str) -> str:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise RunNotFoundError(
                f"'{key}' is not a run key (16 hex digits, or a unique prefix); see `dlbench runs`"
            )
        if len(key) == 16 and self.path("runs", key).exists():  # a full key: no need to list the folder
            return key
        matches = [k for k in self.keys() if k.startswith(key)]
        if not matches:
            raise RunNotFoundError(f"no cached run with key {key} in {self.root}; see `dlbench runs`")
        if len(matches) > 1:
            raise RunNotFoundError(f"key prefix {key} matches {len(matches)} runs; give more digits")
        return matches[0]

    def runs(
        self,
        model: str | None = None,
        dataset: str | None = None,
        status: str | None = None,
        keys: list[str] | None = None,
    ) -> pd.DataFrame:
        keys = keys if keys is not None else self.keys()
        df = self._read_runs_fast(keys)
        if df is None:  # some file is damaged: read one by one, setting aside what cannot be read
            rows = [row for k in keys if (row := self._row(k)) is not None]
            df = pd.DataFrame(rows) if rows else None
        if df is None or df.empty:
            return pd.DataFrame(columns=["key", "status", "model", "dataset"])
        if model:
            df = df[df["model"] == model]
        if dataset:
            df = df[df["dataset"] == dataset]
        if status:
            df = df[df["status"] == status]
        return df.sort_values(["created", "key"]).reset_index(drop=True)

    def _read_runs_fast(self, keys: list[str]) -> pd.DataFrame | None:
        """All `runs` rows as one Arrow table converted to pandas once: about 4x faster than a DataFrame per
        one-row file on a 1,000-run cache. None if any file fails or a row is not its file's run (the caller
        then reads them one by one)."""
        if not keys:
            return None
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq

            tables = [pq.ParquetFile(self.path("runs", k)).read() for k in keys]
            df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
            if df["key"].tolist() != list(keys):
                return None
            for row in df.to_dict("records"):
                check_row(row, row["key"])
                self._manifests[row["key"]] = parse_files(row.get("files"))
            return df
        except Exception:
            return None

    def table(self, name: str, keys: list[str]) -> pd.DataFrame:
        if name not in TABLES:
            raise ValueError(name)
        frames = [df for k in keys if (df := self._read(self.path(name, k), k)) is not None and len(df)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def config(self, key: str) -> TrainConfig:
        return TrainConfig.from_json(self.get(key)["config"], run=key)

    def remove(self, key: str) -> None:
        full = self.resolve_key(key)
        self.path("runs", full).unlink(missing_ok=True)  # first: the run is no longer complete
        for name in TABLES[1:]:
            self.path(name, full).unlink(missing_ok=True)
        self.checkpoint_path(full).unlink(missing_ok=True)
        self.weights_path(full).unlink(missing_ok=True)
        self._verified.pop(full, None)
        self._manifests.pop(full, None)

    # -- sweeps ---------------------------------------------------------------------------------------------
    def sweep_path(self, name: str) -> Path:
        from dlbench.paths import safe_name

        return self.root / "sweeps" / f"{safe_name(name)}.json"

    def save_sweep(self, definition: dict) -> Path:
        self._ensure_root()
        return write_text(
            self.sweep_path(definition["name"]), json.dumps(definition, indent=1, sort_keys=True)
        )

    def _unreadable_doc(self, path: Path, what: str) -> Path | None:
        """Set a damaged JSON document aside (if the cache can be written) and warn in one line."""
        if self.read_only() or self.read_only(path.parent):
            warnings.warn(f"{path} is unreadable; skipped it (read-only cache)", CacheWarning, stacklevel=3)
            return None
        moved = self.quarantine(path)
        warnings.warn(f"{path} is unreadable; moved it to {moved}; {what}", CacheWarning, stacklevel=3)
        return moved

    def sweeps(self) -> list[dict]:
        folder = self.root / "sweeps"
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                self._unreadable_doc(path, "rerun that sweep")
        return out

    def get_sweep(self, name: str) -> dict:
        path = self.sweep_path(name)
        if not path.exists():
            names = [d["name"] for d in self.sweeps()]
            from dlbench.errors import UnknownNameError

            raise UnknownNameError("sweep", name, names, hint="see the names `dlbench sweep` printed")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            moved = self.quarantine(path) if not self.read_only(path.parent) else path
            raise CacheError(
                f"the sweep definition {path} is unreadable (moved to {moved}); "
                "run that sweep again to write it anew"
            ) from None

    # -- figures and count tables ---------------------------------------------------------------------------
    def record_figure(self, kind: str, path: Path, title: str, command: str, meta: dict) -> dict | None:
        """Add (or replace) figure ``path`` in the figure index, for `report`; returns its row.

        Args:
            kind: One of ``figures.KINDS``.
            path: The figure file; stored as an absolute path.
            title: A one-line caption.
            command: The dlbench command line that writes this figure again.
            meta: JSON-serialisable details (numbers shown in the figure).

        Returns None, with a warning line, in a read-only cache (the figure itself was written elsewhere).
        """
        row = _figures.figure_row(kind, path, title, command, meta)
        if self.read_only() or self.read_only(self.figures_dir):
            warnings.warn(
                f"the cache at {self.root} is read-only: {row['path']} was not recorded for `report`",
                CacheWarning,
                stacklevel=2,
            )
            return None
        self._ensure_root()
        index = self.figures_dir / "index.parquet"
        with _figures.locked(self.figures_dir):
            _figures.write_index(index, self._figure_index(index), row)
        return row

    def figures(self, kind: str | None = None) -> pd.DataFrame:
        """All recorded figures (oldest first), optionally of one ``kind``; ``meta`` stays a JSON string."""
        return _figures.select(self._figure_index(self.figures_dir / "index.parquet"), kind)

    def _figure_index(self, path: Path) -> pd.DataFrame:
        try:
            return _figures.read_index(path)
        except Exception:
            self._unreadable_doc(path, "figures recorded before are no longer listed")
            return _figures.read_index(path.with_name("absent"))

    def record_counts(self, title: str, command: str, columns: list[str], rows: list[dict]) -> Path:
        """Record a parameter-count table (`count-params`) for `report`; the same command replaces its own."""
        self._ensure_root()
        return _counts.write_counts(self.root / "counts", title, command, columns, rows)

    def counts(self) -> list[dict]:
        """Every recorded count table, oldest first: {title, command, columns, rows, created}."""
        folder = self.root / "counts"
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out.append(_counts.parse_counts(path.read_text()))
            except (OSError, ValueError):
                self._unreadable_doc(path, "run that count-params command again")
        return sorted(out, key=lambda r: str(r["created"]))
