"""Loading Fashion-MNIST from its ``.gz`` files vs from the decoded copy in ``fashion-mnist/dlbench-decoded/``.

The four ``.gz`` files are copied into a temporary data folder; each round times, in this process and in turn:

- ``gz files``: the folder read-only, so no copy is used or written: md5 and gunzip, as every load did before;
- ``first load``: the folder writable and without a copy: md5 and gunzip, then the copy written;
- ``decoded copy``: the next load, which reads the copy.

The per-process md5 memory is cleared before each load, as in a new process. Medians of ``--rounds`` rounds:

    python benchmarks/decoded_copy.py --data /work/shared/data
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dlbench.data import decoded, file_checks  # noqa: E402
from dlbench.data import torchvision_sets as tvs  # noqa: E402


def timed_load(data: Path) -> float:
    file_checks._VERIFIED.clear()  # as in a new process: md5 sums are checked again
    start = time.perf_counter()
    tvs.load_set("fashion-mnist", data)
    return time.perf_counter() - start


def one_round(data: Path) -> dict[str, float]:
    folder = data / "fashion-mnist"
    shutil.rmtree(folder / decoded.DIRNAME, ignore_errors=True)
    folder.chmod(0o555)  # read-only for everyone: no copy is written (root too)
    try:
        gz = timed_load(data)
    finally:
        folder.chmod(0o755)
    assert not (folder / decoded.DIRNAME).exists()
    first = timed_load(data)
    assert (folder / decoded.DIRNAME / decoded.STAMP).is_file()
    return {"gz files": gz, "first load": first, "decoded copy": timed_load(data)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a folder holding fashion-mnist/*.gz")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "fashion-mnist").mkdir()
        for name in tvs.MNIST_FILES:
            shutil.copy2(a.data / "fashion-mnist" / name, data / "fashion-mnist" / name)
        timed_load(data)  # imports torch; warms the page cache
        times: dict[str, list[float]] = {}
        for _ in range(a.rounds):
            for k, v in one_round(data).items():
                times.setdefault(k, []).append(v)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"Fashion-MNIST load, medians of {a.rounds} rounds, seconds (load average {os.getloadavg()[0]:.1f})"
    )
    for k, v in med.items():
        print(f"{k:14}{v:8.3f}   min {min(times[k]):.3f}  max {max(times[k]):.3f}")
    print(f"gz files / decoded copy: {med['gz files'] / med['decoded copy']:.1f}x")


if __name__ == "__main__":
    main()
