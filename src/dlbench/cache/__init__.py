"""Parquet result cache: one file per run per table, written atomically, keyed by the config hash."""

from dlbench.cache.store import TABLES, Store

__all__ = ["TABLES", "Store"]
