"""The one config loader: conf/base/*.yml, an --env overlay from conf/<env>/, then --set overrides.

Every top-level key of the merged YAML is a section; the result is built into typed dataclasses,
and an unknown key, a missing one or a value of the wrong type is refused with a message naming it.
The defaults live in conf/base/*.yml only (the dataclasses hold the types); `defaults()` gives them to code.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipelines import CONF_DIR

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


@dataclass(frozen=True)
class GenerateConfig:
    devices: int
    days: int
    start: str
    models: list[str]
    failing_fraction: float
    min_degradation_days: float
    max_degradation_days: float
    missing_rate: float
    gaps_per_device_month: float
    max_gap_hours: float
    gzip: bool
    seed: int


@dataclass(frozen=True)
class IngestConfig:
    interval_minutes: int
    temperature_min_c: float
    temperature_max_c: float
    fan_rpm_max: float
    max_fill_gap_readings: int


@dataclass(frozen=True)
class WindowsConfig:
    length: int
    stride: int
    horizon_days: float
    val_fraction: float
    test_fraction: float
    split_seed: int
    negatives_per_positive: float
    features: list[str]


OPTIMIZERS = ("adam", "sgd", "lars")
LSTM_KINDS = ("fused", "reference")
KEPT_EPOCHS = ("last", "best_val_loss")
ENGINES = ("barrier", "distri")
PEERS = ("logistic_window", "gbt_window")  # pipelines.evaluation.peers
SCALINGS = ("none", "linear", "sqrt")
SCHEDULES = ("constant", "poly", "step", "exponential", "plateau")
STUDY_ARMS = ("sgd_fixed", "sgd_linear_warmup", "lars_linear_warmup", "adam_fixed")


@dataclass(frozen=True)
class TrainConfig:
    lstm: str
    engine: str
    hidden_size: int
    num_layers: int
    dropout: float
    optimizer: str
    learning_rate: float
    lr_scaling: str
    base_batch_size: int
    warmup_epochs: float
    schedule: str
    decay_power: float
    step_epochs: float
    gamma: float
    plateau_patience: int
    momentum: float
    nesterov: bool
    weight_decay: float
    lars_trust: float
    clip_norm: float
    clip_value: float
    batch_size: int
    epochs: int
    keep_epoch: str
    members: int
    class_weights: list[float]
    seed: int | None

    def __post_init__(self) -> None:
        """Refuse settings BigDL cannot honour, naming the key."""
        checks = [
            (self.lstm in LSTM_KINDS, f"lstm must be one of {LSTM_KINDS}, not {self.lstm!r}"),
            (self.keep_epoch in KEPT_EPOCHS, f"keep_epoch must be one of {KEPT_EPOCHS}, not {self.keep_epoch!r}"),
            (self.engine in ENGINES, f"engine must be one of {ENGINES}, not {self.engine!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}"),
            (self.lr_scaling in SCALINGS, f"lr_scaling must be one of {SCALINGS}, not {self.lr_scaling!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, not {self.schedule!r}"),
            (self.members >= 1, "members must be at least 1"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.base_batch_size > 0, "base_batch_size must be positive"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (0 < self.lars_trust <= 1, "lars_trust must be in (0, 1]"),
            (self.clip_norm >= 0 and self.clip_value >= 0, "clip_norm and clip_value must be >= 0"),
            (not (self.nesterov and self.momentum <= 0), "nesterov needs momentum > 0"),
            (not (self.nesterov and self.optimizer != "sgd"), "nesterov applies to optimizer=sgd only"),
            (
                self.optimizer != "adam" or (self.warmup_epochs == 0 and self.schedule == "constant"),
                "BigDL's Adam takes a fixed learning rate: warmup_epochs and schedule need optimizer=sgd or lars",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass(frozen=True)
class StudyConfig:
    batch_sizes: list[int]
    arms: list[str]
    epochs: int
    base_batch_size: int
    sgd_learning_rate: float
    lars_learning_rate: float
    lars_trust: float
    adam_learning_rate: float
    momentum: float
    warmup_epochs: float
    target_val_loss: float | None
    max_val_windows: int

    def __post_init__(self) -> None:
        unknown = sorted(set(self.arms) - set(STUDY_ARMS))
        if unknown:
            raise ConfigError(f"unknown arm {unknown[0]!r} in arms (known: {', '.join(STUDY_ARMS)})")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError("batch_sizes must be a non-empty list of positive sizes")


@dataclass(frozen=True)
class EvaluateConfig:
    threshold: float
    batch_size: int
    peers: list[str]
    gbt_iterations: int

    def __post_init__(self) -> None:
        unknown = sorted(set(self.peers) - set(PEERS))
        if unknown:
            raise ConfigError(f"unknown peer {unknown[0]!r} in peers (known: {', '.join(PEERS)})")
        if self.gbt_iterations < 1:
            raise ConfigError("gbt_iterations must be at least 1")


@dataclass(frozen=True)
class EegGenerateConfig:
    patients: int
    seed: int
    start: str
    years: float
    multi_session_fraction: float
    ltm_fraction: float
    edf_seconds: int
    sample_rates: list[int]
    reports_without_files: float
    files_without_reports: float
    anonymized_header_fraction: float
    missing_field_rate: float
    typo_rate: float
    broken_edf_files: int
    broken_reports: int


@dataclass(frozen=True)
class EegDeidConfig:
    key_env: str
    key_file: str
    min_key_bytes: int
    max_shift_days: int


@dataclass(frozen=True)
class EegPairingConfig:
    date_window_days: int
    threshold: float
    ambiguity_margin: float
    max_session_gap_hours: float
    hidden_size: int
    epochs: int
    batch_size: int
    learning_rate: float
    model: str


@dataclass(frozen=True)
class EegClassifierConfig:
    max_tokens: int
    vocab_size: int
    embedding_size: int
    filters: int
    kernel_width: int
    epochs: int
    batch_size: int
    learning_rate: float
    threshold: float


@dataclass(frozen=True)
class EegConfig:
    generate: EegGenerateConfig
    deid: EegDeidConfig
    pairing: EegPairingConfig
    classifier: EegClassifierConfig


@dataclass(frozen=True)
class AlertingConfig:
    calibration: str
    policy: str
    target_false_alarm_rate: float
    review_false_alarm_rate: float
    cost_ratio: float
    threshold_confidence: float
    bootstrap_replicates: int
    model: str
    stack: bool
    reliability_bins: int

    def __post_init__(self) -> None:
        known = ("best", "lstm", "baseline", *PEERS, "stack")
        if self.model not in known:
            raise ConfigError(f"unknown model {self.model!r} (known: {', '.join(known)})")


@dataclass(frozen=True)
class BackblazeConfig:
    attributes: str | list[int]
    min_populated: float
    change_attributes: list[int]
    max_fill_gap_days: int
    disappeared: str
    window_days: int
    min_history_days: int
    stride_days: int
    horizon_days: float
    val_fraction: float
    test_fraction: float
    split_seed: int
    negatives_per_positive: float
    train: TrainConfig


@dataclass(frozen=True)
class TFImportConfig:
    """The demo's TensorFlow LSTM, trained on the driver, exported and imported into BigDL."""

    demo_epochs: int
    demo_batch_size: int
    demo_hidden: int
    demo_max_train_windows: int


@dataclass(frozen=True)
class OutputConfig:
    if_exists: str


@dataclass(frozen=True)
class PipelineConfig:
    output: OutputConfig
    tfimport: TFImportConfig
    generate: GenerateConfig
    ingest: IngestConfig
    windows: WindowsConfig
    train: TrainConfig
    study: StudyConfig
    evaluate: EvaluateConfig
    eeg: EegConfig
    alerting: AlertingConfig
    backblaze: BackblazeConfig


def load_config(
    schema: type[T] = PipelineConfig,  # type: ignore[assignment]
    *,
    env: str | None = None,
    overrides: Sequence[str] = (),
    conf_dir: Path | str = CONF_DIR,
) -> T:
    """Merge base, env overlay and `key.path=value` overrides, and build `schema` from the result."""
    conf_dir = Path(conf_dir)
    tree: dict[str, Any] = {}
    for path in sorted((conf_dir / "base").glob("*.yml")):
        _merge(tree, _read_yaml(path), str(path))
    if env:
        env_dir = conf_dir / env
        if not env_dir.is_dir():
            raise ConfigError(f"unknown environment {env!r}: no folder {env_dir}")
        for path in sorted(env_dir.glob("*.yml")):
            _merge(tree, _read_yaml(path), str(path))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        _set_path(tree, key.strip().split("."), yaml.safe_load(raw) if raw.strip() else "")
    _inherit_train(tree)
    return _build(schema, tree, "")


def _inherit_train(tree: dict[str, Any]) -> None:
    """`backblaze.train` is the `train` section with the keys it sets itself."""
    drives = tree.get("backblaze")
    if isinstance(drives, dict) and isinstance(tree.get("train"), dict) and isinstance(drives.get("train", {}), dict):
        drives["train"] = {**tree["train"], **drives.get("train", {})}


@functools.cache
def _base_config() -> PipelineConfig:
    return load_config()


def defaults(section: type[T], **changes: Any) -> T:
    """The defaults of a config section (conf/base/*.yml; the first section of that type), with `changes`."""
    queue: list[Any] = [_base_config()]
    while queue:
        node = queue.pop(0)
        if isinstance(node, section):
            return dataclasses.replace(typing.cast(Any, node), **changes)
        queue.extend(v for f in dataclasses.fields(node) if dataclasses.is_dataclass(v := getattr(node, f.name)))
    raise ConfigError(f"no config section of type {section.__name__}")


def as_dict(config: Any) -> dict[str, Any]:
    """Plain-dict view of a built config (for logs, --dry-run and run directories)."""
    return dataclasses.asdict(config)


def _read_yaml(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def _merge(into: dict[str, Any], new: dict[str, Any], source: str) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, source)
        else:
            into[key] = value


def _set_path(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {'.'.join(keys)}: {key} is not a section")
    node[keys[-1]] = value


def _build(schema: Any, value: Any, where: str) -> Any:
    name = where or "<root>"
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a section, got {value!r}")
        hints = typing.get_type_hints(schema)
        known = {f.name for f in dataclasses.fields(schema)}
        unknown = sorted(set(value) - known)
        if unknown:
            key = f"{where}.{unknown[0]}" if where else unknown[0]
            raise ConfigError(f"unknown config key {key!r} (known in {name}: {', '.join(sorted(known))})")
        missing = [f.name for f in dataclasses.fields(schema) if f.name not in value]
        if missing:
            key = f"{where}.{missing[0]}" if where else missing[0]
            raise ConfigError(f"config key {key!r} has no value (conf/base/*.yml gives every key its default)")
        # In the dataclass's order: a bad train.* value is reported as train's, not as backblaze.train's (its copy).
        kwargs = {
            f.name: _build(hints[f.name], value[f.name], f"{where}.{f.name}" if where else f.name)
            for f in dataclasses.fields(schema)
        }
        try:
            return schema(**kwargs)
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None
    origin = typing.get_origin(schema)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(schema)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _build(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(" or ".join(errors))
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        (item,) = typing.get_args(schema)
        return [_build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if schema is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if schema is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, schema) or (schema is int and isinstance(value, bool)):
        raise ConfigError(f"{name}: expected {schema.__name__}, got {type(value).__name__} {value!r}")
    return value
