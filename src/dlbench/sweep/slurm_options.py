"""What each Slurm job of a study asks for: flags (``--slurm-*``) over the ``[slurm]`` section of the config file.

The config file is ``$DLBENCH_CONFIG``, else ``config.toml`` in the user config folder (``platformdirs``; on
Linux ``~/.config/dlbench/config.toml``)::

    [slurm]
    partition = "gpu"
    time = "2:00:00"        # minutes (120), H:MM:SS or D-HH:MM:SS
    gpus = 1
    cpus = 8
    mem = "32G"             # GB (32), or with a unit: 32G, 32000M
    account = "my-lab"
    qos = "normal"
    constraint = "a100"
    sbatch = ["mail-type=END", "exclusive"]      # extra #SBATCH lines: KEY=VALUE or a bare flag
    setup = ["module load cuda/12.1"]            # shell lines run before the trial
    array_parallelism = 4   # submit one job array, at most 4 jobs running at once
    signal_delay = 120      # seconds before the time limit at which a job checkpoints and requeues

A flag given on the command line replaces the file's value of that key. The defaults fit one small-model
trial: 2 CPUs, 8 GB, one hour, no GPU (add ``--slurm-gpus 1`` on a GPU partition).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.errors import UsageError

KEYS = (
    "partition",
    "time",
    "gpus",
    "cpus",
    "mem",
    "account",
    "qos",
    "constraint",
    "sbatch",
    "setup",
    "array_parallelism",
    "signal_delay",
)


@dataclass(frozen=True)
class SlurmOptions:
    """The resources and extras of every job of one study (resolved: minutes, GB, seconds)."""

    partition: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int = 2
    mem_gb: float = 8.0
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: dict[str, str | bool] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    array_parallelism: int | None = None
    signal_delay_s: int | None = None

    @property
    def signal_delay(self) -> int:
        """Seconds before the time limit at which a job is told to checkpoint and requeue: at most 2 minutes,
        and at most a quarter of a short limit (a delay longer than the limit would signal at once)."""
        if self.signal_delay_s is not None:
            return self.signal_delay_s
        return max(10, min(120, self.time_min * 60 // 4))

    def executor_parameters(self) -> dict:
        """The keyword arguments of ``submitit.SlurmExecutor.update_parameters``."""
        params: dict = {
            "time": self.time_min,
            "cpus_per_task": self.cpus,
            "mem": f"{self.mem_gb:g}GB"
            if self.mem_gb == int(self.mem_gb)
            else f"{int(self.mem_gb * 1024)}MB",
            "signal_delay_s": self.signal_delay,
            "ntasks_per_node": 1,
        }
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        for name in ("partition", "account", "qos", "constraint"):
            if getattr(self, name):
                params[name] = getattr(self, name)
        if self.sbatch:
            params["additional_parameters"] = dict(self.sbatch)
        if self.setup:
            params["setup"] = list(self.setup)
        if self.array_parallelism:
            params["array_parallelism"] = self.array_parallelism
        return params


def config_file() -> Path:
    """The config file: ``$DLBENCH_CONFIG``, else ``config.toml`` in the user config folder."""
    given = os.environ.get("DLBENCH_CONFIG")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("dlbench")) / "config.toml"


def read_config_section(path: Path, section: str) -> dict:
    """The ``[section]`` table of the TOML file ``path`` ({} if the file or the section is absent)."""
    if not path.exists():
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read the config file {path} ({exc}); fix it or set DLBENCH_CONFIG"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); fix that line") from None
    table = doc.get(section, {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: '{section}' must be a table ([{section}]), not a value")
    return table


def slurm_options(flags: dict | None = None, path: Path | None = None) -> SlurmOptions:
    """Resolve the job options: ``flags`` (the ``--slurm-*`` values given, by key) over the config file's
    ``[slurm]`` section over the defaults. Raises UsageError naming the flag or the file and key at fault."""
    path = path or config_file()
    merged = {k: (v, f"{path}: [slurm] {k}") for k, v in read_config_section(path, "slurm").items()}
    unknown = sorted(set(merged) - set(KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key '{unknown[0]}' in [slurm]; the keys are: {', '.join(KEYS)}")
    for key, value in (flags or {}).items():
        if value is not None and value != []:
            merged[key] = (value, f"--slurm-{key.replace('_', '-')}")
    values = {}
    for key, (value, where) in merged.items():
        values.update(_PARSERS[key](value, where))
    return dataclasses.replace(SlurmOptions(), **values)


def _text(name: str):
    def parse(value, where: str) -> dict:
        if not isinstance(value, str) or not value.strip() or any(c in value for c in "\n\r"):
            raise UsageError(f"{where}: give one line of text, got {value!r}")
        return {name: value.strip()}

    return parse


def _count(name: str, least: int):
    def parse(value, where: str) -> dict:
        try:
            number = int(value) if not isinstance(value, bool) and float(value) == int(float(value)) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number < least:
            raise UsageError(f"{where}: give a whole number of at least {least}, got {value!r}")
        return {name: number}

    return parse


def parse_time(value, where: str = "--slurm-time") -> dict:
    """Minutes, ``M:SS``-free Slurm forms ``H:MM:SS`` / ``D-HH:MM[:SS]``, or ``90m`` / ``2h``: whole minutes."""
    text = str(value).strip().lower()
    minutes = None
    if re.fullmatch(r"\d+", text):
        minutes = int(text)
    elif m := re.fullmatch(r"(\d+)(m|h)", text):
        minutes = int(m[1]) * (60 if m[2] == "h" else 1)
    elif m := re.fullmatch(r"(?:(\d+)-)?(\d+):(\d{2})(?::(\d{2}))?", text):
        days, hours, mins, secs = (int(g or 0) for g in m.groups())
        if m[1] is None and m[4] is None:  # H:MM is ambiguous in Slurm (it reads MM:SS): refuse it
            minutes = None
        else:
            minutes = days * 1440 + hours * 60 + mins + (1 if secs else 0)
    if not minutes or isinstance(value, bool):
        raise UsageError(
            f"{where}: give the time limit in minutes (90), as H:MM:SS (1:30:00) or D-HH:MM:SS, got {value!r}"
        )
    return {"time_min": minutes}


def parse_mem(value, where: str = "--slurm-mem") -> dict:
    """Memory per job: GB as a number, or with a unit (``512M``, ``8G``, ``1T``)."""
    text = str(value).strip().upper().removesuffix("B")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([MGT]?)", text)
    gb = (
        float(m[1]) * {"M": 1 / 1024, "G": 1, "T": 1024, "": 1}[m[2]]
        if m and not isinstance(value, bool)
        else 0
    )
    if gb <= 0:
        raise UsageError(
            f"{where}: give the memory per job in GB (8) or with a unit (8G, 512M), got {value!r}"
        )
    return {"mem_gb": gb}


def parse_sbatch(value, where: str = "--slurm-sbatch") -> dict:
    """Extra ``#SBATCH`` lines as ``KEY=VALUE`` or a bare ``KEY`` (a flag); a leading ``--`` is allowed."""
    lines = [value] if isinstance(value, str) else value
    if not isinstance(lines, list):
        raise UsageError(f"{where}: give a list of KEY=VALUE lines, got {value!r}")
    extra: dict[str, str | bool] = {}
    for line in lines:
        text = str(line).strip().removeprefix("#SBATCH").strip().removeprefix("--")
        key, sep, val = text.partition("=")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", key) or (sep and not val):
            raise UsageError(
                f"{where}: '{line}' is not an sbatch option; give KEY=VALUE (mail-type=END) or KEY"
            )
        extra[key.replace("-", "_")] = val if sep else True
    return {"sbatch": extra}


def parse_setup(value, where: str = "--slurm-setup") -> dict:
    lines = [value] if isinstance(value, str) else value
    if not isinstance(lines, list) or not all(isinstance(x, str) and "\n" not in x for x in lines):
        raise UsageError(f"{where}: give shell lines (a list of strings), got {value!r}")
    return {"setup": list(lines)}


def _signal_delay(value, where: str) -> dict:
    return {"signal_delay_s": _count("signal_delay_s", 1)(value, where)["signal_delay_s"]}


_PARSERS = {
    "partition": _text("partition"),
    "time": parse_time,
    "gpus": _count("gpus", 0),
    "cpus": _count("cpus", 1),
    "mem": parse_mem,
    "account": _text("account"),
    "qos": _text("qos"),
    "constraint": _text("constraint"),
    "sbatch": parse_sbatch,
    "setup": parse_setup,
    "array_parallelism": _count("array_parallelism", 1),
    "signal_delay": _signal_delay,
}


def check_options(options: SlurmOptions) -> None:
    """Refuse combinations Slurm would only reject later: a signal delay at or past the time limit."""
    if options.signal_delay >= options.time_min * 60:
        raise UsageError(
            f"the signal delay ({options.signal_delay} s) must be shorter than the time limit "
            f"({options.time_min} min); lower signal_delay or raise --slurm-time"
        )
