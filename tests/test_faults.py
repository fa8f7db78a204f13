"""Crashes, concurrency, corruption and unsafe files: what dlbench promises in docs/guarantees.md, tested.

The kill and concurrency tests run `dlbench sweep` in real processes killed with SIGKILL. Starting Python with
torch and torchvision costs seconds, so those processes are forked from a small server that imported dlbench
once (and ran no torch op, so forking is safe); the final checks run a fresh `python -m dlbench` as well.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from dlbench.cache import Store
from dlbench.paths import safe_name

ROOT = Path(__file__).resolve().parents[1]
DATA_OPTS = ["--dataset", "shapes", "--dataset-opt", "train_size=600", "--dataset-opt", "test_size=100"]
TINY = [*DATA_OPTS, "--epochs", "3", "--batch-size", "32", "--model", "mlp", "--set", "width=16"]
LRS = ["0.05", "0.02", "0.01", "0.005"]

SERVER = textwrap.dedent(
    """
    import json, os, sys, traceback
    import dlbench.cli._app, dlbench.sweep.inline, dlbench.engine.trainer, dlbench.analysis.params
    from dlbench.data import get_dataset
    from dlbench.cli import main
    get_dataset("shapes")
    for line in sys.stdin:
        req = json.loads(line)
        if "wait" in req:
            _, status = os.waitpid(req["wait"], 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(json.dumps({"code": code}), flush=True)
            continue
        pid = os.fork()
        if pid:
            print(json.dumps({"pid": pid}), flush=True)
            continue
        try:  # the child: a `dlbench` process, minus the seconds of imports
            os.environ.clear()
            os.environ.update(req["env"])
            for fd, path in ((1, req["out"]), (2, req["err"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            code = 0
            try:
                main(req["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(99)
    """
)


class Forker:
    """Start `dlbench ARGV` as a forked process; kill and wait for it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        script = tmp / "forkserver.py"
        script.write_text(SERVER)
        # One torch thread per process: several processes share two busy cores, and OpenMP spinning on an
        # oversubscribed machine costs seconds per epoch.
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.n = 0

    def _ask(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def start(self, argv: list[str], env: dict) -> tuple[int, Path, Path]:
        self.n += 1
        out, err = self.tmp / f"out{self.n}.txt", self.tmp / f"err{self.n}.txt"
        pid = self._ask({"argv": argv, "env": env, "out": str(out), "err": str(err)})["pid"]
        return pid, out, err

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})["code"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def forker(tmp_path):
    f = Forker(tmp_path)
    yield f
    f.close()


def env_for(cache: Path, tmp: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLBENCH_")}
    env.update(
        DLBENCH_HOME=str(cache),
        DLBENCH_DATA_DIR=str(tmp / "data"),
        DLBENCH_CLAIM_TIMEOUT="20",
        DLBENCH_CLAIM_POLL="0.05",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def sweep_argv(lrs=LRS, name: str = "kills") -> list[str]:
    return ["sweep", "lr", ",".join(lrs), *TINY, "--no-figures", "--format", "json", "--name", name]


def all_tables_read(cache: Path) -> int:
    n = 0
    for p in cache.rglob("*.parquet"):
        if "quarantine" not in p.parts:
            pd.read_parquet(p)
            n += 1
    return n


def leftovers(cache: Path) -> list[str]:
    """Files a finished, uninterrupted sweep must not leave: checkpoints, claims, temporary files."""
    found = [
        p
        for p in cache.rglob("*")
        if p.is_file() and (p.suffix == ".tmp" or p.suffix == ".claim" or p.parent.name == "checkpoints")
    ]
    return sorted(str(p.relative_to(cache)) for p in found)


def assert_matches_reference(cache: Path, ref: Path, epochs: int = 3) -> list[str]:
    store, ref_store = Store(cache), Store(ref)
    keys = sorted(store.keys())
    assert keys == sorted(ref_store.keys()), "a trial is missing or extra"
    for key in keys:
        a, b = store.table("epochs", [key]), ref_store.table("epochs", [key])
        assert a["epoch"].tolist() == list(range(epochs)), (key, a["epoch"].tolist())  # each epoch once
        assert a["val_acc"].tolist() == b["val_acc"].tolist(), key
        assert a["train_loss"].tolist() == pytest.approx(b["train_loss"].tolist(), rel=1e-6), key
        ra, rb = store.get(key), ref_store.get(key)
        assert ra["status"] == "ok" and ra["test_acc"] == rb["test_acc"], key
        assert ra["test_loss"] == pytest.approx(rb["test_loss"], rel=1e-6), key
    return keys


# ----------------------------------------------------------------------------------------------- crashes
KILL_ARGS = [
    "--dataset",
    "shapes",
    "--dataset-opt",
    "train_size=2000",
    "--dataset-opt",
    "test_size=100",
    "--epochs",
    "4",
    "--batch-size",
    "32",
    "--model",
    "mlp",
    "--set",
    "width=16",
]


def kill_argv() -> list[str]:
    # One trial after another (--fuse off): 20 kills spread over 16 trial-epochs; a fused group of the four
    # would finish after 4 epochs, before most kills (fused kills: tests/test_fused_sweep.py).
    argv = ["sweep", "lr", ",".join(LRS), *KILL_ARGS, "--no-figures", "--format", "json", "--name", "kills"]
    return [*argv, "--fuse", "off"]


@pytest.mark.slow
def test_twenty_kills_lose_nothing_and_resume_exactly(forker, tmp_path):
    ref, cache = tmp_path / "ref", tmp_path / "cache"
    pid, out, err = forker.start(kill_argv(), env_for(ref, tmp_path))
    assert forker.wait(pid) == 0, err.read_text()
    # Kill moments are drawn on the scale of one epoch, so the 20 kills spread over the whole sweep.
    epoch_s = max(0.05, float(Store(ref).table("epochs", Store(ref).keys())["seconds"].mean()))

    rng = random.Random(20240601)
    killed, modes = 0, []
    for _ in range(20):
        mode = rng.choice(["delay", "delay", "checkpoint-write", "cache-write"])
        extra = {}
        if mode == "checkpoint-write":  # SIGKILL halfway through that temp file
            extra["DLBENCH_FAULT"] = f"{mode}@{rng.randint(1, 2)}"
        elif mode == "cache-write":  # one of the six files a finished run writes
            extra["DLBENCH_FAULT"] = f"{mode}@{rng.randint(1, 6)}"
        delay = rng.uniform(0.0, 1.5 * epoch_s)
        pid, out, err = forker.start(kill_argv(), env_for(cache, tmp_path, **extra))
        if mode == "delay":  # a random moment after training began
            deadline = time.time() + 30
            while time.time() < deadline and not list((cache / "claims").glob("*.claim")):
                if (cache / "runs").is_dir() and len(list((cache / "runs").glob("*.parquet"))) == len(LRS):
                    break
                time.sleep(0.002)
            time.sleep(delay)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = forker.wait(pid)
        assert code in (0, -signal.SIGKILL), (code, err.read_text())
        killed += code == -signal.SIGKILL
        modes.append((mode, extra.get("DLBENCH_FAULT"), code, len(list((cache / "runs").glob("*.parquet")))))
        all_tables_read(cache)  # after every crash, every complete file reads
    assert killed >= 12, modes

    # A fresh process (real start-up) finishes the sweep.
    env = env_for(cache, tmp_path)
    env["PYTHONPATH"] = str(ROOT / "src")
    final = subprocess.run(
        [sys.executable, "-m", "dlbench", *kill_argv()], env=env, capture_output=True, text=True, timeout=300
    )
    assert final.returncode == 0, final.stderr
    rows = json.loads(final.stdout)
    assert [r["lr"] for r in rows] == [float(v) for v in LRS] and all(r["status"] == "ok" for r in rows)
    assert "warning:" not in final.stderr, final.stderr  # no file was ever damaged
    assert_matches_reference(cache, ref, epochs=4)
    assert all_tables_read(cache) == 5 * len(LRS)
    assert leftovers(cache) == [] and not (cache / "quarantine").exists()


def test_fault_hooks_kill_midway_and_the_rerun_recovers(forker, tmp_path):
    cache = tmp_path / "cache"
    argv = [
        "sweep",
        "lr",
        "0.05",
        *DATA_OPTS,
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--model",
        "mlp",
        "--set",
        "width=16",
        "--no-figures",
        "--format",
        "json",
    ]
    pid, _, err = forker.start(argv, env_for(cache, tmp_path, DLBENCH_FAULT="checkpoint-write@2"))
    assert forker.wait(pid) == -signal.SIGKILL, err.read_text()
    [ckpt] = list((cache / "checkpoints").glob("*.pt"))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 0  # epoch 1's file was the half-written temp one
    assert list((cache / "checkpoints").glob(".*.tmp")), "the hook should die halfway through a temp file"
    pid, _, err = forker.start(
        argv, env_for(cache, tmp_path, DLBENCH_FAULT="cache-write@6")
    )  # 4 tables, weights, then the runs row
    assert forker.wait(pid) == -signal.SIGKILL, err.read_text()
    assert not list((cache / "runs").glob("*.parquet")) and list((cache / "runs").glob(".*.tmp"))
    pid, out, err = forker.start(argv, env_for(cache, tmp_path))
    assert forker.wait(pid) == 0, err.read_text()
    assert json.loads(out.read_text())[0]["status"] == "ok"
    key = ckpt.stem
    assert Store(cache).table("epochs", [key])["epoch"].tolist() == [0, 1]
    assert leftovers(cache) == []


# ------------------------------------------------------------------------------------------- concurrency
def test_four_processes_share_one_cache_and_train_each_trial_once(forker, tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "train.log"
    orders = [LRS[i:] + LRS[:i] for i in range(4)]  # overlapping sweeps, each starting elsewhere
    orders = [o[:3] for o in orders]
    procs = [
        forker.start(sweep_argv(o, name=f"p{i}"), env_for(cache, tmp_path, DLBENCH_TRAIN_LOG=log))
        for i, o in enumerate(orders)
    ]
    codes = [forker.wait(pid) for pid, _, _ in procs]
    assert codes == [0, 0, 0, 0], [e.read_text()[-2000:] for _, _, e in procs]
    for order, (_, out, _) in zip(orders, procs, strict=True):
        rows = json.loads(out.read_text())
        assert [r["lr"] for r in rows] == [float(v) for v in order] and all(r["status"] == "ok" for r in rows)
    events = [line.split() for line in log.read_text().splitlines()]
    starts = [(pid, key) for pid, key, ev, _ in events if ev == "start"]
    ends = [(pid, key) for pid, key, ev, _ in events if ev == "end"]
    store = Store(cache)
    assert sorted(k for _, k in starts) == sorted(store.keys()) and len(starts) == len(
        LRS
    )  # each trained once
    assert sorted(starts) == sorted(ends) and not [e for e in events if e[2] == "lost"]
    for key in store.keys():
        assert store.table("epochs", [key])["epoch"].tolist() == [0, 1, 2]
    assert all_tables_read(cache) == 5 * len(LRS)
    assert leftovers(cache) == []


def _tiny_plan(lrs=("0.05", "0.02")):
    from dlbench.sweep.grid import plan_sweep

    return plan_sweep(
        "mlp",
        "shapes",
        [("lr", list(lrs))],
        settings={"width": "8"},
        dataset_options={"train_size": "300", "test_size": "60"},
        options={"epochs": "1"},
    )


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _plant_claim(store: Store, key: str, pid: int, host: str | None = None, age: float = 0.0) -> Path:
    import socket

    path = store.root / "claims" / f"{key}.claim"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"pid": pid, "host": host or socket.gethostname(), "time": time.time() - age, "token": "x"}
        )
    )
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_stale_claims_are_taken_over_and_live_ones_are_not(tmp_path, monkeypatch):
    from dlbench.sweep.trial import TrialBusy
    from dlbench.sweep.trial import run_trial_here as run_one

    monkeypatch.setenv("DLBENCH_CLAIM_TIMEOUT", "5")
    log = tmp_path / "train.log"
    monkeypatch.setenv("DLBENCH_TRAIN_LOG", str(log))
    store = Store(tmp_path / "cache")
    a, b = (t.config for t in _tiny_plan().trials)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = _plant_claim(store, a.key, sleeper.pid)  # a live process on this host, fresh heartbeat
        with pytest.raises(TrialBusy):
            run_one(a, store, wait=False, data_dir=tmp_path / "data")
        assert live.exists() and not store.has(a.key)
        _plant_claim(
            store, a.key, sleeper.pid, host="elsewhere", age=30
        )  # a heartbeat older than the timeout
        row, cached = run_one(a, store, wait=False, data_dir=tmp_path / "data")
        assert row["status"] == "ok" and not cached
    finally:
        sleeper.kill()
        sleeper.wait()
    _plant_claim(store, b.key, _dead_pid())  # killed process on this host: taken over at once
    row, cached = run_one(b, store, wait=False, data_dir=tmp_path / "data")
    assert row["status"] == "ok" and not cached
    assert not list((store.root / "claims").glob("*.claim"))
    events = [line.split()[2] for line in log.read_text().splitlines()]
    assert [e for e in events if not e.startswith("epoch")] == [
        "busy",
        "start",
        "end",
        "start",
        "end",
    ]


def test_sweep_comes_back_to_a_trial_another_process_holds(tmp_path, monkeypatch):
    from dlbench.sweep.inline import run_sweep

    monkeypatch.setenv("DLBENCH_CLAIM_POLL", "0.05")
    log = tmp_path / "train.log"
    monkeypatch.setenv("DLBENCH_TRAIN_LOG", str(log))
    store = Store(tmp_path / "cache")
    plan = _tiny_plan()
    first, second = (t.config.key for t in plan.trials)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    _plant_claim(store, first, sleeper.pid)

    def release_when_second_is_done():  # the "other process" dies once this one has moved on
        deadline = time.time() + 60
        while not store.path("runs", second).exists() and time.time() < deadline:
            time.sleep(0.02)
        sleeper.kill()
        sleeper.wait()  # reaped: a zombie still answers kill(pid, 0)

    helper = threading.Thread(target=release_when_second_is_done)
    helper.start()
    try:
        counts = run_sweep(plan, store, data_dir=tmp_path / "data")
    finally:
        sleeper.kill()
        sleeper.wait()
        helper.join()
    assert [r["key"] for r in counts.rows] == [first, second] and counts.done == 2
    order = [(line.split()[1], line.split()[2]) for line in log.read_text().splitlines()]
    order = [(key, event) for key, event in order if not event.startswith("epoch")]
    assert order[0] == (first, "busy") and order[1:3] == [(second, "start"), (second, "end")]
    assert order[-2:] == [(first, "start"), (first, "end")]


def test_a_claim_taken_over_stops_its_old_owner(tmp_path):
    from dlbench.cache.claims import Claim, ClaimLost

    claim = Claim(tmp_path / "claims", "k" * 16, timeout=60, heartbeat=0.05)
    assert claim.acquire()
    assert not Claim(tmp_path / "claims", "k" * 16).acquire()  # held by a live process (this one)
    claim.path.write_text(json.dumps({"pid": 1, "host": "other", "token": "theirs"}))
    deadline = time.time() + 5
    while not claim.lost and time.time() < deadline:
        time.sleep(0.02)
    with pytest.raises(ClaimLost):
        claim.check()
    claim.release()
    assert json.loads(claim.path.read_text())["token"] == "theirs"  # never removes someone else's claim


# -------------------------------------------------------------------------------------------- corruption
TRAIN = ["train", *TINY[:-2], "--set", "width=8", "--format", "json"]


def _config():
    from dlbench.resolve import resolve_config

    return resolve_config(
        "mlp",
        "shapes",
        {"width": "8"},
        {"train_size": "600", "test_size": "100"},
        {"epochs": "3", "batch_size": "32"},
    )


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_truncated_checkpoint_is_quarantined_and_the_run_starts_over(cli, tmp_path):
    ref = cli(*TRAIN, "--cache-dir", tmp_path / "ref")
    assert ref.code == 0, ref
    key = _config().key
    assert json.loads(ref.out)["key"] == key
    # A real epoch-0 checkpoint, cut in half, where this run's resume state lives.
    from dlbench.engine.trainer import train

    cache = tmp_path / "cache"
    ckpt = Store(cache).checkpoint_path(key)
    ckpt.parent.mkdir(parents=True)
    full = tmp_path / "full.pt"
    one_epoch = _config().replace(options=dataclasses.replace(_config().options, epochs=1))
    train(one_epoch, data_dir=tmp_path / "data", checkpoint_path=full)
    ckpt.write_bytes(full.read_bytes()[: full.stat().st_size // 2])

    res = cli(*TRAIN)
    assert res.code == 0, res
    [warning] = _warnings(res.err)
    assert str(ckpt) in warning and "starts over" in warning and "Traceback" not in res.err
    assert "CacheWarning" not in res.err and "warnings.warn" not in res.err  # not Python's two-line format
    assert json.loads(res.out)["test_acc"] == json.loads(ref.out)["test_acc"]
    assert [p.name.endswith(f"{key}.pt") for p in (cache / "quarantine").iterdir()] == [True]
    assert Store(cache).table("epochs", [key])["epoch"].tolist() == [0, 1, 2]


class Evil:
    """A pickle that would create a file when loaded without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_checkpoint_is_refused_and_never_run(cli, tmp_path):
    key = _config().key
    marker = tmp_path / "pwned"
    cache = tmp_path / "cache"
    ckpt = Store(cache).checkpoint_path(key)
    ckpt.parent.mkdir(parents=True)
    torch.save({"key": key, "epoch": 2, "payload": Evil(marker)}, ckpt)
    probe = tmp_path / "probe.pt"  # the payload is real: an unsafe load would run it
    probe.write_bytes(ckpt.read_bytes())
    torch.load(probe, weights_only=False)
    assert marker.exists()
    marker.unlink()

    res = cli(*TRAIN)
    assert res.code == 0, res
    assert not marker.exists(), "the checkpoint's pickle ran"
    [warning] = _warnings(res.err)
    assert str(ckpt) in warning and "starts over" in warning
    assert Store(cache).table("epochs", [key])["epoch"].tolist() == [0, 1, 2]
    assert not ckpt.exists() and len(list((cache / "quarantine").iterdir())) == 1


def test_checkpoint_with_a_broken_history_is_not_resumed(cli, tmp_path):
    key = _config().key
    cache = tmp_path / "cache"
    ckpt = Store(cache).checkpoint_path(key)
    ckpt.parent.mkdir(parents=True)
    torch.save(
        {
            "key": key,
            "epoch": 1,
            "model": {},
            "optimizer": {},
            "epochs": [{"epoch": 0}, {"epoch": 0}],
            "steps": [],
            "grads": [],
            "best": {},
            "bad_epochs": 0,
        },
        ckpt,
    )
    res = cli(*TRAIN)
    assert res.code == 0, res
    [warning] = _warnings(res.err)
    assert "history" in warning and str(ckpt) in warning
    assert Store(cache).table("epochs", [key])["epoch"].tolist() == [0, 1, 2]


def test_damaged_parquet_files_are_moved_aside_and_recomputed(cli, tmp_path):
    argv = [
        "sweep",
        "lr",
        "0.05,0.02,0.01",
        *TINY[:-2],
        "--set",
        "width=8",
        "--epochs",
        "1",
        "--no-figures",
        "--format",
        "json",
    ]
    first = cli(*argv)
    assert first.code == 0, first
    cache = Path(os.environ["DLBENCH_HOME"])
    k1, k2, k3 = (t["key"] for t in Store(cache).get_sweep("lr-mlp-shapes")["trials"])
    before = {k: Store(cache).get(k)["test_acc"] for k in (k1, k2, k3)}
    runs_file, epochs_file = cache / "runs" / f"{k1}.parquet", cache / "epochs" / f"{k2}.parquet"
    runs_file.write_bytes(runs_file.read_bytes()[:40])  # truncated
    epochs_file.write_bytes(b"this is not parquet at all")  # garbage

    listing = cli("runs", "--format", "json")
    assert listing.code == 0, listing
    warns = _warnings(listing.err)
    assert len(warns) == 1 and str(runs_file) in warns[0] and "again" in warns[0], listing
    assert [r["key"] for r in json.loads(listing.out)] and k1 not in listing.out  # the rest stays usable
    with pytest.warns(UserWarning, match="is unreadable"):  # damaged epochs: its run is no longer complete
        table = Store(cache).table("epochs", [k2, k3])
    assert set(table["key"]) == {k3}
    assert not Store(cache).has(k2) and Store(cache).has(k3)
    assert len(list((cache / "quarantine").iterdir())) == 3  # k1 runs row; k2 epochs and its runs row

    preds = cache / "predictions" / f"{k3}.parquet"
    preds.write_bytes(preds.read_bytes()[:-100])  # cut short: the sweep itself notices (footer check)
    again = cli(*argv)
    assert again.code == 0, again
    [warning] = _warnings(again.err)
    assert str(preds) in warning and "counts as missing" in warning and "Traceback" not in again.err
    after = {r["lr"]: r["test_acc"] for r in json.loads(again.out)}
    assert list(after.values()) == [before[k1], before[k2], before[k3]]  # recomputed, identically
    assert all_tables_read(cache) == 15 and len(list((cache / "quarantine").iterdir())) == 5
    assert not _warnings(cli(*argv).err)  # and the next sweep is clean


def test_cache_from_a_newer_dlbench_is_refused_in_one_line(cli, tmp_path):
    cache = tmp_path / "newer"
    cache.mkdir()
    (cache / "SCHEMA").write_text(json.dumps({"schema": 99}))
    for argv in (["runs"], ["sweep", "lr", "0.05", *TINY], ["report", "--out", tmp_path / "r.md"]):
        res = cli(*argv, "--cache-dir", cache)
        lines = res.err.strip().splitlines()
        assert res.code == 1 and len(lines) == 1, res
        assert str(cache) in lines[0] and "newer dlbench" in lines[0] and "upgrade dlbench" in lines[0], res
    assert sorted(p.name for p in cache.iterdir()) == ["SCHEMA"]


def test_dataset_file_with_a_wrong_checksum_is_one_line(cli, tmp_path):
    folder = Path(os.environ["DLBENCH_DATA_DIR"]) / "fashion-mnist"
    folder.mkdir(parents=True)
    from dlbench.data.torchvision_sets import MNIST_FILES

    for name in MNIST_FILES:
        (folder / name).write_bytes(b"\x1f\x8b not the real file")
    res = cli("train", "--model", "mlp", "--dataset", "fashion-mnist", "--epochs", "1", "--format", "json")
    lines = res.err.strip().splitlines()
    assert res.code != 0 and len(lines) == 1 and lines[0].startswith("error: "), res
    assert "corrupt dataset file" in lines[0] and str(folder) in lines[0] and "Traceback" not in res.err
    assert not (Path(os.environ["DLBENCH_HOME"]) / "runs").exists()


# -------------------------------------------------------------------------------------------- security
def test_sweep_names_never_become_paths_outside_the_cache(cli, tmp_path):
    cache = Path(os.environ["DLBENCH_HOME"])
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    res = cli(
        "sweep",
        "lr",
        "0.05",
        *TINY[:-2],
        "--set",
        "width=8",
        "--epochs",
        "1",
        "--name",
        "../../evil",
        "--format",
        "json",
    )
    assert res.code == 0, res
    assert set(p.name for p in tmp_path.iterdir()) - set(outside_before) <= {"cache", "data"}
    assert not (tmp_path.parent / "evil").exists() and not (tmp_path.parent / "evil.json").exists()
    for p in cache.rglob("*"):
        assert p.resolve().is_relative_to(cache.resolve())
    [definition] = list((cache / "sweeps").glob("*.json"))
    # The name is kept as the user wrote it (it is a label); only the file and folder names are sanitised.
    assert (
        definition.parent == cache / "sweeps" and json.loads(definition.read_text())["name"] == "../../evil"
    )
    assert (cache / "sweeps" / safe_name("../../evil") / "curves.png").exists()
    assert Store(cache).sweep_path("../../x").parent == cache / "sweeps"


def test_pickle_is_never_used_for_run_tables(tmp_path):
    """Tables are Parquet (no code); only checkpoints/weights are torch files, loaded with weights_only."""
    from dlbench.engine import checkpoint

    path = tmp_path / "x.pt"
    path.write_bytes(pickle.dumps(Evil(tmp_path / "pwned")))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()
