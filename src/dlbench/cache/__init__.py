"""The result cache: :class:`Store` is the one door to every file under the cache folder (see store.py)."""

from dlbench.cache.store import TABLES, CacheWarning, Store

__all__ = ["TABLES", "CacheWarning", "Store"]
