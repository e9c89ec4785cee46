"""The one config loader: conf/base/*.yml, an --env overlay from conf/<env>/, then --set overrides.

Every top-level key of the merged YAML is a section; the result is built into typed dataclasses,
and an unknown key or a value of the wrong type is refused with a message naming it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipelines import CONF_DIR

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


@dataclass(frozen=True)
class GenerateConfig:
    devices: int = 200
    days: int = 30
    start: str = "2026-01-01"
    models: list[str] = field(default_factory=lambda: ["XS-100", "XS-200", "HD-9"])
    failing_fraction: float = 0.2
    min_degradation_days: float = 2.0
    max_degradation_days: float = 21.0
    missing_rate: float = 0.01
    gaps_per_device_month: float = 2.0
    max_gap_hours: float = 12.0
    gzip: bool = False
    seed: int = 7


@dataclass(frozen=True)
class IngestConfig:
    interval_minutes: int = 15
    temperature_min_c: float = -20.0
    temperature_max_c: float = 120.0
    fan_rpm_max: float = 30000.0
    max_fill_gap_readings: int = 4


@dataclass(frozen=True)
class WindowsConfig:
    length: int = 96
    stride: int = 16
    horizon_days: float = 7.0
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    split_seed: int = 13
    negatives_per_positive: float = 3.0
    features: list[str] = field(
        default_factory=lambda: [
            "inlet_temp_c",
            "cpu_temp_c",
            "disk_temp_c",
            "fan1_rpm",
            "fan2_rpm",
            "power_on_hours",
            "reallocated_sectors",
            "read_errors",
            "write_errors",
            "fault_code",
        ]
    )


OPTIMIZERS = ("adam", "sgd", "lars")
LSTM_KINDS = ("fused", "reference")
ENGINES = ("barrier", "distri")
SCALINGS = ("none", "linear", "sqrt")
SCHEDULES = ("constant", "poly", "step", "exponential", "plateau")
STUDY_ARMS = ("sgd_fixed", "sgd_linear_warmup", "lars_linear_warmup", "adam_fixed")


@dataclass(frozen=True)
class TrainConfig:
    lstm: str = "fused"
    engine: str = "barrier"
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 0.005
    lr_scaling: str = "none"
    base_batch_size: int = 256
    warmup_epochs: float = 0.0
    schedule: str = "constant"
    decay_power: float = 1.0
    step_epochs: float = 1.0
    gamma: float = 0.5
    plateau_patience: int = 1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    lars_trust: float = 1.0
    clip_norm: float = 0.0
    clip_value: float = 0.0
    batch_size: int = 256
    epochs: int = 5
    class_weights: list[float] = field(default_factory=lambda: [1.0, 1.0])
    seed: int | None = None

    def __post_init__(self) -> None:
        """Refuse settings BigDL cannot honour, naming the key."""
        checks = [
            (self.lstm in LSTM_KINDS, f"lstm must be one of {LSTM_KINDS}, not {self.lstm!r}"),
            (self.engine in ENGINES, f"engine must be one of {ENGINES}, not {self.engine!r}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}"),
            (self.lr_scaling in SCALINGS, f"lr_scaling must be one of {SCALINGS}, not {self.lr_scaling!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, not {self.schedule!r}"),
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
    batch_sizes: list[int] = field(default_factory=lambda: [64, 256, 1024, 4096])
    arms: list[str] = field(
        default_factory=lambda: ["sgd_fixed", "sgd_linear_warmup", "lars_linear_warmup", "adam_fixed"]
    )
    epochs: int = 6
    base_batch_size: int = 64
    sgd_learning_rate: float = 0.05
    lars_learning_rate: float = 0.05
    lars_trust: float = 0.1
    adam_learning_rate: float = 0.005
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    target_val_loss: float | None = None
    max_val_windows: int = 2000

    def __post_init__(self) -> None:
        unknown = sorted(set(self.arms) - set(STUDY_ARMS))
        if unknown:
            raise ConfigError(f"unknown arm {unknown[0]!r} in arms (known: {', '.join(STUDY_ARMS)})")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError("batch_sizes must be a non-empty list of positive sizes")


@dataclass(frozen=True)
class EvaluateConfig:
    threshold: float = 0.5
    batch_size: int = 512


@dataclass(frozen=True)
class EegGenerateConfig:
    patients: int = 120
    seed: int = 11
    start: str = "2005-01-01"
    years: float = 8.0
    multi_session_fraction: float = 0.2
    ltm_fraction: float = 0.25
    edf_seconds: int = 2
    sample_rates: list[int] = field(default_factory=lambda: [200, 250, 256])
    reports_without_files: float = 0.04
    files_without_reports: float = 0.04
    anonymized_header_fraction: float = 0.15
    missing_field_rate: float = 0.12
    typo_rate: float = 0.03
    broken_edf_files: int = 4
    broken_reports: int = 2


@dataclass(frozen=True)
class EegDeidConfig:
    key_env: str = "EEG_DEID_KEY"
    key_file: str = ""
    min_key_bytes: int = 16
    max_shift_days: int = 365


@dataclass(frozen=True)
class EegPairingConfig:
    date_window_days: int = 2
    threshold: float = 0.5
    ambiguity_margin: float = 0.2
    max_session_gap_hours: float = 36.0
    hidden_size: int = 16
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 0.01
    model: str = "bigdl"


@dataclass(frozen=True)
class EegClassifierConfig:
    max_tokens: int = 160
    vocab_size: int = 2000
    embedding_size: int = 24
    filters: int = 48
    kernel_width: int = 3
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 0.005
    threshold: float = 0.5


@dataclass(frozen=True)
class EegConfig:
    generate: EegGenerateConfig = field(default_factory=EegGenerateConfig)
    deid: EegDeidConfig = field(default_factory=EegDeidConfig)
    pairing: EegPairingConfig = field(default_factory=EegPairingConfig)
    classifier: EegClassifierConfig = field(default_factory=EegClassifierConfig)


@dataclass(frozen=True)
class AlertingConfig:
    calibration: str = "platt"
    policy: str = "false_alarm_rate"
    target_false_alarm_rate: float = 0.01
    review_false_alarm_rate: float = 0.05
    cost_ratio: float = 50.0
    reliability_bins: int = 10


@dataclass(frozen=True)
class BackblazeConfig:
    attributes: list[int] = field(default_factory=lambda: [5, 9, 187, 188, 194, 197, 198])
    log_attributes: list[int] = field(default_factory=lambda: [5, 9, 187, 188, 197, 198])
    max_fill_gap_days: int = 2
    disappeared: str = "censor"
    window_days: int = 5
    stride_days: int = 1
    horizon_days: float = 3.0
    val_fraction: float = 0.2
    test_fraction: float = 0.3
    split_seed: int = 13
    negatives_per_positive: float = 20.0
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(hidden_size=16, epochs=5, batch_size=128, learning_rate=0.005)
    )


@dataclass(frozen=True)
class TFImportConfig:
    """The demo's TensorFlow LSTM, trained on the driver, exported and imported into BigDL."""

    demo_epochs: int = 3
    demo_batch_size: int = 128
    demo_hidden: int = 32
    demo_max_train_windows: int = 4000  # TensorFlow trains on a driver-side sample of this size at most


@dataclass(frozen=True)
class OutputConfig:
    if_exists: str = "replace"  # replace (atomically) | refuse


@dataclass(frozen=True)
class PipelineConfig:
    output: OutputConfig = field(default_factory=OutputConfig)
    tfimport: TFImportConfig = field(default_factory=TFImportConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    eeg: EegConfig = field(default_factory=EegConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    backblaze: BackblazeConfig = field(default_factory=BackblazeConfig)


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
    return _build(schema, tree, "")


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
        kwargs = {k: _build(hints[k], v, f"{where}.{k}" if where else k) for k, v in value.items()}
        try:
            return schema(**kwargs)
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None
    origin = typing.get_origin(schema)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(schema)
        if value is None and type(None) in args:
            return None
        return _build(next(a for a in args if a is not type(None)), value, where)
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
