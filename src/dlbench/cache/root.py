"""The cache root: where it is, whether it can be written, its schema marker, cleanup and quarantine.

:class:`CacheRoot` is the base of :class:`dlbench.cache.Store`; nothing here knows what a run is.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

from dlbench.atomic import reap, write_text
from dlbench.config import SCHEMA_VERSION
from dlbench.errors import CacheError, UsageError

TABLES = ("runs", "epochs", "steps", "grads", "predictions")
FOLDERS = ("checkpoints", "weights", "sweeps", "claims", "figures", "counts", "studies")  # besides the TABLES


class CacheWarning(UserWarning):
    """A damaged cache file was set aside (or skipped, in a read-only cache); shown as one line."""


class CacheRoot:
    """The cache folder itself. Reading never writes; the first write prepares the root (:meth:`_ensure_root`)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._check_not_a_file()
        self._check_schema()
        self._prepared = False  # root made, SCHEMA written, abandoned temp files reaped

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
        figure folder, each study's ``slurm`` folder, ``claims``, ``figures``, ``counts`` and ``studies``, and never in or
        through a symlinked folder.
        """
        root = self.root.resolve()
        folders = [root, *(root / t for t in TABLES), *(root / f for f in FOLDERS)]
        for parent in (root / "sweeps", root / "slurm"):  # each sweep's figures, each study's job record
            if parent.is_dir() and not parent.is_symlink():
                with os.scandir(parent) as entries:
                    folders += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        return sum(reap(folder) for folder in folders)

    def _unreadable_doc(self, path: Path, what: str) -> Path | None:
        """Set a damaged JSON document aside (if the cache can be written) and warn in one line."""
        if self.read_only() or self.read_only(path.parent):
            warnings.warn(f"{path} is unreadable; skipped it (read-only cache)", CacheWarning, stacklevel=3)
            return None
        moved = self.quarantine(path)
        warnings.warn(f"{path} is unreadable; moved it to {moved}; {what}", CacheWarning, stacklevel=3)
        return moved

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
