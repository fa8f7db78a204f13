"""The cache's documents beside the runs: sweep definitions, the figure index and recorded count tables.

:class:`Documents` is a part of :class:`dlbench.cache.Store`; the file formats live in :mod:`.figures` and
:mod:`.counts`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from dlbench.atomic import write_text
from dlbench.cache import counts as _counts
from dlbench.cache import figures as _figures
from dlbench.cache.root import CacheRoot, CacheWarning
from dlbench.errors import CacheError

if TYPE_CHECKING:  # pandas is imported where a table is read or written (about 0.6 s)
    import pandas as pd


class Documents(CacheRoot):
    """Sweeps, figures and count tables of a cache root."""

    @property
    def figures_dir(self) -> Path:
        """Where kernel, feature-map and equivariance figures go unless ``--out`` says otherwise."""
        return self.root / "figures"

    # -- sweeps ---------------------------------------------------------------------------------------------
    def sweep_path(self, name: str) -> Path:
        """``sweeps/<file name>.json``: one file per exact name (``paths.safe_name`` is one to one)."""
        from dlbench.paths import safe_name

        return self.root / "sweeps" / f"{safe_name(name)}.json"

    def save_sweep(self, definition: dict) -> Path:
        self._ensure_root()
        return write_text(
            self.sweep_path(definition["name"]), json.dumps(definition, indent=1, sort_keys=True)
        )

    def sweeps(self) -> list[dict]:
        """Every saved study, one per name (a file named before names were encoded one to one gives way to
        the file of the current encoding)."""
        folder = self.root / "sweeps"
        out: dict[str, tuple[bool, dict]] = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                self._unreadable_doc(path, "rerun that sweep")
                continue
            name = str(doc.get("name")) if isinstance(doc, dict) else path.stem
            current = path == self.sweep_path(name)
            if name not in out or (current and not out[name][0]):
                out[name] = (current, doc)
        return [doc for _, doc in out.values()]

    def get_sweep(self, name: str) -> dict:
        path = self.sweep_path(name)
        if not path.exists():
            found = [d for d in self.sweeps() if d.get("name") == name]
            if found:  # written before names were encoded one to one
                return found[-1]
            names = [d["name"] for d in self.sweeps()]
            from dlbench.errors import UnknownNameError

            raise UnknownNameError("sweep", name, names, hint="see the names `dlbench sweep` printed")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            if self.read_only() or self.read_only(path.parent):
                raise CacheError(f"the sweep definition {path} is unreadable (read-only cache)") from None
            raise CacheError(
                f"the sweep definition {path} is unreadable (moved to {self.quarantine(path)}); "
                "run that sweep again to write it anew"
            ) from None

    # -- study runs ------------------------------------------------------------------------------------------
    def study_path(self, name: str) -> Path:
        """``studies/<file name>.json``: what `dlbench study run` did, for `report --study`."""
        from dlbench.paths import safe_name

        return self.root / "studies" / f"{safe_name(name)}.json"

    def save_study_run(self, record: dict) -> Path:
        """Record a study run: its title, its sections in order and what each produced (sweep names, count
        tables, figures); the same study name replaces its own record."""
        self._ensure_root()
        return write_text(self.study_path(record["name"]), json.dumps(record, indent=1, sort_keys=True))

    def study_runs(self) -> list[str]:
        """The names of the recorded study runs, sorted."""
        folder = self.root / "studies"
        names = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                names.append(str(json.loads(path.read_text())["name"]))
            except (OSError, ValueError, KeyError, TypeError):
                self._unreadable_doc(path, "run that study again")
        return sorted(names)

    def get_study_run(self, name: str) -> dict:
        """The record of study run ``name``.

        Raises:
            UnknownNameError: No study of that name was run with this cache (with the closest names).
            CacheError: Its record is unreadable.
        """
        path = self.study_path(name)
        if not path.exists():
            from dlbench.errors import UnknownNameError

            raise UnknownNameError(
                "study", name, self.study_runs(), hint="run it first: dlbench study run NAME|FILE"
            )
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or not isinstance(record.get("sections"), list):
                raise ValueError("not a study record")
            return record
        except (OSError, ValueError):
            raise CacheError(f"the study record {path} is unreadable; run that study again") from None

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
