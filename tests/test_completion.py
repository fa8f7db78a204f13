"""Shell completion: `--install-completion` and `--show-completion` work, and completing never imports torch
(a Tab press must answer as fast as `dlbench --help`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Runs `main` as the shell's completion function does (the environment says what to complete), then checks
# that torch stayed out of the process.
PROBE = (
    "import sys\n"
    "from dlbench.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "assert 'torch' not in sys.modules, 'torch was imported'\n"
)


def _complete(words: str, tmp_path: Path, shell: str = "bash") -> str:
    env = {**os.environ, "HOME": str(tmp_path), "_DLBENCH_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env |= {
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
    else:
        env["_TYPER_COMPLETE_ARGS"] = words
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_completing_commands_options_and_choices_imports_no_torch(tmp_path):
    assert {"train", "sweep", "count-params", "report", "runs"} <= set(
        _complete("dlbench ", tmp_path).split()
    )
    assert _complete("dlbench train --ep", tmp_path).split() == ["--epochs"]
    assert "--cache-dir" in _complete("dlbench sweep --", tmp_path).split()
    assert set(_complete("dlbench runs --format ", tmp_path).split()) == {"table", "csv", "json", "markdown"}
    assert "show" in _complete("dlbench runs ", tmp_path).split()
    zsh = _complete("dlbench train --ep", tmp_path, shell="zsh")
    assert "--epochs" in zsh


def test_show_and_install_completion(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    shown = subprocess.run(
        [sys.executable, "-c", PROBE, "--show-completion", "bash"], env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "_DLBENCH_COMPLETE=complete_bash" in shown.stdout and "complete " in shown.stdout

    installed = subprocess.run(
        [sys.executable, "-c", PROBE, "--install-completion", "bash"], env=env, capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "dlbench.sh"
    assert "_DLBENCH_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()  # sourced by every new shell


def test_help_lists_the_completion_options(cli):
    res = cli("--help")
    assert res.code == 0 and "--install-completion" in res.out and "--show-completion" in res.out
