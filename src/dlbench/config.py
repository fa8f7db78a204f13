"""The resolved training configuration and its identity.

A run *is* its resolved config: model and its full settings, dataset and its options, every training option,
the device kind and precision. ``run_key`` hashes the canonical JSON of that config together with
``SCHEMA_VERSION``, so two invocations that resolve to the same config share one cached result, and a change
of what a result means (a schema bump) never reuses old results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from dlbench.errors import UsageError
from dlbench.settings import canon_key, coerce

SCHEMA_VERSION = 1

# Upper bounds that keep a typo from becoming an internal error hours later (an image side of 100,000 pixels
# needs 30 GB for one uint8 RGB image; a seed must survive `seed * 1000 + epoch` in 64 bits).
MAX_INPUT_SIZE = 4096
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
PRECISIONS = ("auto", "fp32", "bf16")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
INITS = ("scratch", "pretrained")
# The `transfer` shorthand (and sweep axis): each name stands for one (init, finetune) pair.
TRANSFER_MODES = {
    "scratch": ("scratch", "full"),
    "linear-probe": ("pretrained", "linear-probe"),
    "fine-tune": ("pretrained", "full"),
}
# Options added for transfer learning; at their defaults they are left out of the canonical JSON, so the run
# keys of every run made before they existed stay the same.
TRANSFER_OPTIONS = ("init", "finetune", "weights", "from_run", "input_size")
# Models whose blocks for `--finetune last-K` changed when families began to declare their anatomy (0.1.0
# counted top-level children). Their last-K configs carry this marker, so a cached 0.1.0 run, which trained
# other layers, is never served for the same flags.
LAST_K_REDEFINED = {"resnet18": "anatomy", "mlpmixer": "anatomy", "vgg16": "anatomy", "vgg16_bn": "anatomy"}


@dataclass(frozen=True)
class TrainOptions:
    """Every training option, with its default. Field names are the option names (dashes on the CLI)."""

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "none"
    warmup_epochs: float = 0.0
    step_every: int = 0  # step schedule: epochs between decays (0: a third of the run)
    gamma: float = 0.1  # step schedule: decay factor
    batch_size: int = 128
    epochs: int = 10
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # max global gradient norm; 0: off
    patience: int = 0  # early stopping on validation accuracy; 0: off
    val_split: float = 0.1  # fraction of train held out (the seeds' 45k/5k on CIFAR-10)
    train_subset: int = 0  # use only the first N training images (after the split); 0: all
    normalize: bool = True
    augment: bool = False  # random crop (pad 4) and horizontal flip, on the device
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast on CUDA and on CPUs with native bf16, fp32 elsewhere
    memory_format: str = "auto"  # auto: channels_last for convolutional models on CUDA and AVX2+ CPUs
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    compile: bool = False
    init: str = "scratch"  # scratch | pretrained (torchvision's weights, or --weights / --from-run)
    finetune: str = "full"  # full | linear-probe | last-K
    weights: str = ""  # a local state dict to start from (absolute path once resolved)
    from_run: str = ""  # start from the final weights of this cached run (its full key once resolved)
    input_size: int = 0  # resize images to N x N on the device; 0: the weights' own size (or the data's)
    transfer: str = ""  # shorthand for (init, finetune); once resolved, the label of the pair (not identity)

    def validate(self) -> TrainOptions:
        def need(cond, msg):
            if not cond:
                raise UsageError(msg)

        need(
            self.optimizer in OPTIMIZERS,
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got '{self.optimizer}'",
        )
        need(
            self.schedule in SCHEDULES,
            f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'",
        )
        need(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}")
        need(
            self.memory_format in MEMORY_FORMATS,
            f"memory-format must be one of {', '.join(MEMORY_FORMATS)}, got '{self.memory_format}'",
        )
        floats = {f.name: getattr(self, f.name) for f in fields(self) if isinstance(f.default, float)}
        for name, value in floats.items():  # values given in Python, not parsed from the command line
            need(math.isfinite(value), f"{name.replace('_', '-')} must be a finite number, got {value}")
        need(self.lr > 0, f"lr must be positive, got {self.lr:g}")
        need(self.momentum >= 0, f"momentum must be >= 0, got {self.momentum:g}")
        need(self.weight_decay >= 0, f"weight-decay must be >= 0, got {self.weight_decay:g}")
        need(self.batch_size >= 1, f"batch-size must be at least 1, got {self.batch_size}")
        need(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        need(0 <= self.label_smoothing < 1, "label-smoothing must be in [0, 1)")
        need(self.grad_clip >= 0, "grad-clip must be >= 0 (0 turns it off)")
        need(self.patience >= 0, "patience must be >= 0 (0 turns early stopping off)")
        need(0 <= self.val_split < 1, f"val-split must be in [0, 1), got {self.val_split:g}")
        need(self.train_subset >= 0, "train-subset must be >= 0 (0 uses all)")
        need(self.warmup_epochs >= 0, "warmup-epochs must be >= 0")
        need(
            self.step_every >= 0 and 0 < self.gamma <= 1,
            "step schedule needs step-every >= 0 and 0 < gamma <= 1",
        )
        need(self.init in INITS, f"init must be one of {', '.join(INITS)}, got '{self.init}'")
        need(
            finetune_blocks(self.finetune) != -1,
            f"finetune must be full, linear-probe or last-K (K >= 1, e.g. last-2), got '{self.finetune}'",
        )
        need(
            self.transfer in ("", *TRANSFER_MODES) or transfer_pair(self.transfer) is not None,
            f"transfer must be one of {', '.join(TRANSFER_MODES)} or last-K, got '{self.transfer}'",
        )
        need(
            0 <= self.input_size <= MAX_INPUT_SIZE,
            f"input-size must be between 0 (the weights' own size) and {MAX_INPUT_SIZE}, got {self.input_size}",
        )
        need(0 <= self.seed < 2**31, f"seed must be between 0 and 2**31 - 1, got {self.seed}")
        need(self.epochs <= MAX_EPOCHS, f"epochs must be at most {MAX_EPOCHS:,}, got {self.epochs:,}")
        need(
            self.batch_size <= MAX_BATCH, f"batch-size must be at most {MAX_BATCH:,}, got {self.batch_size:,}"
        )
        need(
            all(c in "0123456789abcdef" for c in self.from_run),
            f"from-run must be a run key (hex digits; see `dlbench runs`), got '{self.from_run}'",
        )
        dev = self.device
        need(
            dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit()),
            f"device must be auto, cpu, cuda, cuda:N or mps, got '{dev}'",
        )
        return self


TRAIN_OPTION_NAMES = tuple(f.name for f in fields(TrainOptions))


def finetune_blocks(finetune: str) -> int | None:
    """How many blocks (besides the head) ``finetune`` trains: None = all, 0 = head only; -1 = invalid."""
    if finetune == "full":
        return None
    if finetune == "linear-probe":
        return 0
    k = finetune[5:] if finetune.startswith("last-") else ""
    return int(k) if k.isdigit() and int(k) >= 1 else -1


def transfer_pair(transfer: str) -> tuple[str, str] | None:
    """The (init, finetune) pair of a ``transfer`` shorthand: a TRANSFER_MODES name, or last-K (pretrained)."""
    if transfer in TRANSFER_MODES:
        return TRANSFER_MODES[transfer]
    if transfer.startswith("last-") and (finetune_blocks(transfer) or 0) >= 1:
        return ("pretrained", transfer)
    return None


def transfer_label(init: str, finetune: str) -> str:
    """The name of an (init, finetune) pair: scratch, linear-probe, fine-tune, or e.g. 'last-2' / 'scratch+last-2'."""
    for name, pair in TRANSFER_MODES.items():
        if pair == (init, finetune):
            return name
    return finetune if init == "pretrained" else f"{init}+{finetune}"


def train_option_defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(TrainOptions)}


def make_options(raw: dict[str, Any] | None = None) -> TrainOptions:
    """Typed, validated options from raw strings or values keyed by option name (dashes allowed)."""
    defaults = train_option_defaults()
    values = dict(defaults)
    for key, value in (raw or {}).items():
        key = canon_key(key)
        if key not in defaults:
            from dlbench.errors import UnknownNameError

            raise UnknownNameError("training option", key, defaults)
        values[key] = coerce(key.replace("_", "-"), value, defaults[key])
    return TrainOptions(**values).validate()


@dataclass(frozen=True)
class TrainConfig:
    """One fully resolved run: what is trained, on what, and how."""

    model: str
    dataset: str
    model_settings: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    options: TrainOptions = field(default_factory=TrainOptions)
    device_kind: str = "cpu"  # part of the identity: a GPU result is not a CPU result
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model_settings"] = _jsonable(self.model_settings)
        d["dataset_options"] = _jsonable(self.dataset_options)
        opts, defaults = d["options"], train_option_defaults()
        drop = {
            "device",
            "transfer",
        }  # the device kind is what counts; transfer is a label of (init, finetune)
        drop |= {k for k in TRANSFER_OPTIONS if opts[k] == defaults[k]}  # keep the keys of older runs
        if _legacy_memory_format(opts["memory_format"], self.device_kind):
            drop.add("memory_format")  # what every run made before the option existed used: the same key
        if opts["from_run"]:
            drop.add("weights")  # the source run's key identifies the weights; its path depends on the cache
        d["options"] = {k: v for k, v in opts.items() if k not in drop}
        if self.options.train_subset and self.options.val_split:
            d["val"] = "follows-subset"  # validation sized to the subset since 0.2: not 0.1.0's full split
        if self.model in LAST_K_REDEFINED and (finetune_blocks(self.options.finetune) or 0) >= 1:
            d["blocks"] = LAST_K_REDEFINED[self.model]  # last-K trains other blocks than 0.1.0 did: a new run
        return d

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, text: str, run: str = "") -> TrainConfig:
        """The config a runs row recorded (its ``config`` column).

        Raises:
            CacheError: the row was written by a newer dlbench (an option or field this version does not
                know, or a newer schema) or is not a config at all; one line naming ``run``.
        """
        from dlbench.errors import CacheError

        run = run or (hashlib.sha256(text.encode()).hexdigest()[:16] if isinstance(text, str) else "")
        who = f"run {run}" if run else "a cached run"
        try:
            d = json.loads(text)
            opts = dict(d["options"])
            _ = (d["model"], d["dataset"], d["model_settings"], d["dataset_options"], d["device_kind"])
            top = set(d) - {"model", "dataset", "model_settings", "dataset_options", "options", "device_kind"}
        except (TypeError, ValueError, KeyError) as exc:
            raise CacheError(
                f"the config of {who} is unreadable ({type(exc).__name__}); remove it with "
                f"`dlbench runs rm {run or 'KEY'}` and train it again"
            ) from None
        unknown = sorted((set(opts) - set(TRAIN_OPTION_NAMES)) | (top - {"schema", "blocks", "val"}))
        schema = d.get("schema", SCHEMA_VERSION)
        if unknown or not isinstance(schema, int) or schema > SCHEMA_VERSION:
            what = f"option {', '.join(unknown)}" if unknown else f"schema {schema}"
            raise CacheError(
                f"{who} was written by a newer dlbench ({what} unknown to this version); upgrade dlbench "
                "to read it, or use another --cache-dir"
            )
        opts["transfer"] = transfer_label(opts.get("init", "scratch"), opts.get("finetune", "full"))
        # Recorded before the option existed: contiguous off CUDA; on CUDA the engine chose (channels_last for
        # convolutional models), which "auto" still means.
        opts.setdefault("memory_format", "auto" if d["device_kind"] == "cuda" else "contiguous")
        return cls(
            model=d["model"],
            dataset=d["dataset"],
            model_settings=_untuple(d["model_settings"]),
            dataset_options=d["dataset_options"],
            options=TrainOptions(**opts),
            device_kind=d["device_kind"],
            schema=schema,
        )


def _legacy_memory_format(memory_format: str, device_kind: str) -> bool:
    """True for the memory format runs recorded before ``memory_format`` was an option (their keys omit it):
    contiguous off CUDA; on CUDA, "auto" (the engine's choice then and now). A resolved CUDA config always
    names its format, so its key never meets an old run that may have used the other one."""
    return memory_format == "auto" or (memory_format == "contiguous" and device_kind != "cuda")


def _jsonable(settings: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(settings.items())}


def _untuple(settings: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
