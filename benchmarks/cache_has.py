"""How fast is ``Store.has()``, the integrity check behind every cache lookup? 1,000 synthetic runs.

The runs are written through ``Store.save`` (see ``report_cache.py``: 100 epochs, per-step losses, gradient
norms, and per-sample predictions of a 10,000-image test set, as for CIFAR-10), then ``has()`` is timed for all
of them in a fresh ``Store`` (nothing verified yet: every runs row read, every table hashed) and again in the
same ``Store`` (files unchanged since: one ``stat`` each). Wall-clock and CPU seconds are both printed: on a busy
machine only the CPU seconds say what the check costs. For comparison, side by side in the same run: the
check dlbench 0.1.0 made (the whole runs row read with pandas, and each table's Parquet footer), which found
neither damage inside a table nor a table of another run.

    python benchmarks/cache_has.py                   # a fresh cache in a temporary folder
    python benchmarks/cache_has.py --cache /tmp/big  # reuse (or create) a cache there
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

import report_cache
from dlbench.cache import TABLES, Store


def old_check(store: Store, key: str) -> bool:
    """dlbench 0.1.0's has(): the runs row reads, and every other table's footer reads."""
    pd.read_parquet(store.path("runs", key))
    return all(pq.read_metadata(store.path(t, key)) is not None for t in TABLES[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", type=Path, help="cache folder to reuse or create (default: a temporary one)"
    )
    parser.add_argument("--test-size", type=int, default=10_000, help="predictions per run")
    args = parser.parse_args()
    report_cache.TEST_SIZE = args.test_size
    with tempfile.TemporaryDirectory() as tmp:
        root = args.cache or Path(tmp) / "cache"
        if not (root / "runs").is_dir():
            t = time.perf_counter()
            report_cache.make_cache(root, 250)
            print(f"wrote 1,000 synthetic runs in {time.perf_counter() - t:.1f} s: {root}")
        keys = Store(root).keys()
        size = sum(p.stat().st_size for p in root.rglob("*.parquet")) / 2**20
        for _ in range(2):  # the second pass reads from the page cache, as a lookup right after a sweep does
            store = Store(root)
            t, cpu = time.perf_counter(), time.process_time()
            ok = sum(store.has(k) for k in keys)
            cold, cold_cpu = time.perf_counter() - t, time.process_time() - cpu
        t = time.perf_counter()
        sum(store.has(k) for k in keys)
        warm = time.perf_counter() - t
        t = time.perf_counter()
        sum(old_check(store, k) for k in keys)
        old = time.perf_counter() - t
        print(
            f"has() for {len(keys)} runs ({ok} intact, {size:.0f} MiB of tables): {cold:.3f} s in a fresh "
            f"Store ({1e3 * cold / len(keys):.2f} ms per run; {cold_cpu:.3f} s of CPU time, which a machine "
            f"shared with other work does not inflate), {warm:.3f} s again in the same Store; "
            f"0.1.0's footer-only check: {old:.3f} s ({cold / old:.2f}x)"
        )


if __name__ == "__main__":
    main()
