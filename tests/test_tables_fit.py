"""Tables in a narrow terminal: no key, swept value or metric is ever cut; columns left out are named."""

from __future__ import annotations

import csv
import io

import pytest

from dlbench.cli import _output
from dlbench.cli._fit import Column, fit, header_text

TINY = ["--dataset", "shapes", "--dataset-opt", "train_size=200", "--dataset-opt", "test_size=100"]
TINY += ["--epochs", "1", "--batch-size", "64", "--model", "mlp", "--set", "width=8"]


@pytest.fixture
def narrow(monkeypatch):
    """An 80-column terminal, as `COLUMNS=80` gives one."""
    monkeypatch.setattr(_output.out, "width", 80)
    return 80


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _lines_fit(text: str, width: int) -> None:
    table_lines = [ln for ln in text.splitlines() if ln[:1] in "┏┃┡│└"]
    assert table_lines and all(len(ln) <= width for ln in table_lines), text


def test_runs_and_sweep_keep_every_key_swept_value_and_metric_whole(cli, narrow):
    grid = ["--grid", "lr=0.000123456789,0.0321", "--grid", "weight_decay=0.000125,0"]
    shown = cli("sweep", *grid, *TINY, "--no-figures")
    assert shown.code == 0, shown
    _lines_fit(shown.out, narrow)
    rows = _csv(cli("sweep", *grid, *TINY, "--no-figures", "--format", "csv").out)
    assert len(rows) == 4
    for value in ("0.000123456789", "0.0321", "0.000125"):
        assert value in shown.out  # the swept values as given, not cut nor rounded to 4 digits
    for r in rows:
        assert f"{float(r['best_val_acc']):.4f}" in shown.out
        assert f"{float(r['test_acc']):.4f}" in shown.out
    assert "left out to fit 80 columns: inference_seconds" in " ".join(shown.out.split())

    listed = cli("runs")
    assert listed.code == 0, listed
    _lines_fit(listed.out, narrow)
    runs = _csv(cli("runs", "--format", "csv").out)
    assert len(runs) == 4
    for r in runs:
        assert r["key"] in listed.out
        assert f"{float(r['test_acc']):.4f}" in listed.out
        assert f"{float(r['best_val_acc']):.4f}" in listed.out
    note = " ".join(listed.out.split())
    assert "left out to fit 80 columns: created, seconds_per_epoch" in note
    assert "(--format csv shows every column)" in note
    assert "…" not in listed.out + shown.out


def test_a_wide_terminal_leaves_nothing_out(cli, monkeypatch):
    monkeypatch.setattr(_output.out, "width", 200)
    assert cli("sweep", "lr", "0.01", *TINY, "--no-figures").code == 0
    listed = cli("runs")
    assert "left out" not in listed.out
    assert "seconds_per_epoch" in listed.out and "created" in listed.out


def test_fit_breaks_headers_then_drops_then_prints_kept_columns_whole():
    cols = [
        Column("key", ["a" * 30], whole=True),
        Column("best_val_acc", ["0.1234"], whole=True),
        Column("description", ["a few words that can wrap"], whole=False),
        Column("seconds_per_epoch", ["1.234"], whole=True),
    ]
    roomy = fit(cols, 200, keep=["key"], drop_order=())
    assert roomy.dropped == [] and roomy.widths == [c.full_width() for c in cols]
    tight = fit(cols, 60, keep=["key", "best_val_acc"], drop_order=["seconds_per_epoch"])
    assert tight.dropped == ["seconds_per_epoch"] and tight.total <= 60
    assert tight.widths[0] == 30  # the kept key is whole
    assert header_text(cols[1], 6) == "best_\nval_\nacc"
    tiny = fit(cols, 20, keep=["key", "best_val_acc"], drop_order=())
    assert tiny.dropped == ["seconds_per_epoch", "description"]
    assert tiny.widths[0] == 30 and tiny.total > 20  # wider than the terminal, but whole


def test_text_wraps_between_words_and_a_long_word_is_left_out_rather_than_broken():
    assert Column("description", ["plain conv net: stages of conv"], whole=False).min_width() == 11
    path = Column("folder", ["/a/very/long/path/name"], whole=False)
    assert path.min_width() == len("/a/very/long/path/name")
    cols = [Column("name", ["shapes"], whole=True), path]
    assert fit(cols, 25, keep=["name"], drop_order=["folder"]).dropped == ["folder"]


def test_columns_sets_the_width_even_when_piped(monkeypatch):
    piped = io.StringIO()  # not a terminal
    monkeypatch.delenv("COLUMNS", raising=False)
    assert _output._width(piped) == 200
    monkeypatch.setenv("COLUMNS", "80")
    assert _output._width(piped) == 80
    monkeypatch.setenv("COLUMNS", "wide")
    assert _output._width(piped) == 200
