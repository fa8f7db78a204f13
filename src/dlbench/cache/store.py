"""The result cache.

Layout under the cache root::

    SCHEMA                      {"schema": N}: refuse caches written by a newer dlbench
    runs/<key>.parquet          one row: status, config, summary (written LAST: its presence = run complete)
    epochs/<key>.parquet        one row per epoch
    steps/<key>.parquet         subsampled per-step training loss
    grads/<key>.parquet         per epoch and layer: mean and max gradient norm
    predictions/<key>.parquet   per test sample: label, prediction, confidence
    checkpoints/<key>.pt        last finished epoch of a run in progress (deleted when it completes)
    weights/<key>.pt            final weights of a completed run
    sweeps/<name>.json          a sweep's definition: axes, fixed values, trial keys in order
    claims/<key>.claim          the process training that run now, with a heartbeat (see claims.py)
    quarantine/                 unreadable files moved aside, so the rest of the cache stays usable

Every file is written to a temporary name in its folder (``.<name>.<host>-<pid>.tmp``) and renamed into place,
so a crash never leaves half a file and readers never see one; temporary files left by killed processes are
removed by the next sweep. Everything a table or figure shows is derived from these files.

Test hook: ``DLBENCH_FAULT=cache-write[@N]`` kills this process (SIGKILL) halfway through writing its N-th
cache file (default the first), to test that a crash at that moment loses nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import pandas as pd

from dlbench.atomic import crash_midway, fault_due, tmp_path
from dlbench.config import SCHEMA_VERSION, TrainConfig
from dlbench.errors import CacheError, RunNotFoundError, UsageError

TABLES = ("runs", "epochs", "steps", "grads", "predictions")


class CacheWarning(UserWarning):
    pass


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    if fault_due("cache-write"):
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        with open(tmp, "wb") as f:
            crash_midway(f, buf.getvalue())
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


class Store:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._check_not_a_file()
        self._check_schema()

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
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the cache folder {self.root} ({exc.strerror}); "
                "choose a writable --cache-dir or DLBENCH_HOME"
            ) from None
        marker = self.root / "SCHEMA"
        if not marker.exists():
            tmp = tmp_path(marker)
            tmp.write_text(json.dumps({"schema": SCHEMA_VERSION}))
            os.replace(tmp, marker)

    def clean_tmp(self) -> int:
        """Remove temp files left by killed writers, in dlbench's own folders only (see atomic.reap)."""
        from dlbench.atomic import reap

        folders = [
            self.root,
            *(self.root / t for t in TABLES),
            *(self.root / f for f in ("checkpoints", "weights", "sweeps", "claims")),
        ]
        return sum(reap(folder) for folder in folders)

    # -- writing --------------------------------------------------------------------------------------------
    def save(self, config: TrainConfig, result) -> dict:
        """Store a finished run (ok, diverged or oom). Returns its `runs` row."""
        self._ensure_root()
        key = config.key
        tables = {
            "epochs": pd.DataFrame(result.epochs),
            "steps": pd.DataFrame(result.steps),
            "grads": pd.DataFrame(result.grads),
            "predictions": pd.DataFrame(result.predictions or {}),
        }
        for name, df in tables.items():
            df.insert(0, "key", key) if len(df) else None
            write_parquet(df, self.path(name, key))
        if result.state_dict is not None:
            from dlbench.engine.checkpoint import save_atomic

            save_atomic(result.state_dict, self.weights_path(key), fault="cache-write")
        row = {
            "key": key,
            "status": result.status,
            "message": result.message,
            "model": config.model,
            "dataset": config.dataset,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "config": config.canonical_json(),
            "command": config.command(),
            **result.summary,
        }
        write_parquet(pd.DataFrame([row]), self.path("runs", key))  # last: marks the run complete
        self.checkpoint_path(key).unlink(missing_ok=True)
        return row

    # -- reading --------------------------------------------------------------------------------------------
    def _read(self, path: Path) -> pd.DataFrame | None:
        """Read one table file; an unreadable one is quarantined with a one-line CacheWarning.

        A damaged table of a finished run also takes that run's ``runs`` row to quarantine, so the run no
        longer counts as complete and the next `sweep` or `train` of it recomputes it.
        """
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            return None
        except Exception as exc:
            self._damaged(path, type(exc).__name__)
            return None

    def _damaged(self, path: Path, why: str) -> None:
        """Move a damaged table file aside (with its run's ``runs`` row) and warn in one line."""
        moved = self.quarantine(path)
        if moved is None:  # another process moved it aside first
            return
        key, table = path.stem, path.parent.name
        if table != "runs" and self.quarantine(self.path("runs", key)) is not None:
            also = f" (and its runs row, so run {key} counts as missing)"
        else:
            also = ""
        warnings.warn(
            f"{path} is unreadable ({why}); moved it to {moved}{also}; "
            "run the same sweep or train command again to recompute that run",
            CacheWarning,
            stacklevel=3,
        )

    def _intact(self, key: str) -> bool:
        """Whether every table of a finished run is present and has a valid Parquet footer (cheap: no data)."""
        import pyarrow.parquet as pq

        for table in TABLES[1:]:
            path = self.path(table, key)
            try:
                pq.read_metadata(path)
            except FileNotFoundError:
                moved = self.quarantine(self.path("runs", key))
                if moved is not None:
                    warnings.warn(
                        f"{path} is missing; moved run {key}'s runs row to {moved}; "
                        "run the same sweep or train command again to recompute that run",
                        CacheWarning,
                        stacklevel=3,
                    )
                return False
            except Exception as exc:
                self._damaged(path, type(exc).__name__)
                return False
        return True

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

    def has(self, key: str) -> bool:
        """Whether run ``key`` is complete: its runs row reads and its other tables are intact."""
        path = self.path("runs", key)
        return path.exists() and self._read(path) is not None and self._intact(key)

    def get(self, key: str) -> dict:
        """The `runs` row of ``key`` (a unique prefix is enough)."""
        full = self.resolve_key(key)
        df = self._read(self.path("runs", full))
        if df is None:
            raise RunNotFoundError(f"run {key} is not in the cache at {self.root}; see `dlbench runs`")
        return df.iloc[0].to_dict()

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
        if df is None:  # some file is damaged: read one by one, quarantining what cannot be read
            frames = [df for k in keys if (df := self._read(self.path("runs", k))) is not None]
            df = pd.concat(frames, ignore_index=True) if frames else None
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
        one-row file on a 1,000-run cache. None if any file fails (the caller then reads them one by one)."""
        if not keys:
            return None
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq

            tables = [pq.ParquetFile(self.path("runs", k)).read() for k in keys]
            return pa.concat_tables(tables, promote_options="permissive").to_pandas()
        except Exception:
            return None

    def table(self, name: str, keys: list[str]) -> pd.DataFrame:
        if name not in TABLES:
            raise ValueError(name)
        frames = [df for k in keys if (df := self._read(self.path(name, k))) is not None and len(df)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def config(self, key: str) -> TrainConfig:
        return TrainConfig.from_json(self.get(key)["config"])

    def remove(self, key: str) -> None:
        full = self.resolve_key(key)
        self.path("runs", full).unlink(missing_ok=True)  # first: the run is no longer complete
        for name in TABLES[1:]:
            self.path(name, full).unlink(missing_ok=True)
        self.checkpoint_path(full).unlink(missing_ok=True)
        self.weights_path(full).unlink(missing_ok=True)

    # -- sweeps ---------------------------------------------------------------------------------------------
    def sweep_path(self, name: str) -> Path:
        from dlbench.paths import safe_name

        return self.root / "sweeps" / f"{safe_name(name)}.json"

    def save_sweep(self, definition: dict) -> Path:
        self._ensure_root()
        path = self.sweep_path(definition["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(path)
        tmp.write_text(json.dumps(definition, indent=1, sort_keys=True))
        os.replace(tmp, path)
        return path

    def sweeps(self) -> list[dict]:
        folder = self.root / "sweeps"
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                moved = self.quarantine(path)
                warnings.warn(
                    f"{path} is unreadable; moved it to {moved}; rerun that sweep", CacheWarning, stacklevel=2
                )
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
            moved = self.quarantine(path)
            raise CacheError(
                f"the sweep definition {path} is unreadable (moved to {moved}); "
                "run that sweep again to write it anew"
            ) from None

    def clear_quarantine(self) -> None:
        shutil.rmtree(self.root / "quarantine", ignore_errors=True)
