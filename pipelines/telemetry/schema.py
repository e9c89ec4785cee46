"""Column names and schemas shared by the telemetry generator, ingest and windows.

Raw layout written by the generator (and expected from real fleets):
  <root>/readings/day=YYYY-MM-DD/part-*.csv[.gz]   header row; columns RAW_COLUMNS
  <root>/devices.csv                                 device_id,model  (the known fleet)
  <root>/failures.csv                                device_id,failure_time
Timestamps are UTC, "yyyy-MM-dd HH:mm:ss".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    FloatType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from pipelines.config import PipelineConfig

TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"

SENSORS = [
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
TEMPERATURES = ["inlet_temp_c", "cpu_temp_c", "disk_temp_c"]
FANS = ["fan1_rpm", "fan2_rpm"]
COUNTERS = ["power_on_hours", "reallocated_sectors", "read_errors", "write_errors"]

RAW_COLUMNS = ["device_id", "model", "timestamp", *SENSORS]

# Every raw field is read as text; ingest parses and validates each one and quarantines what fails.
RAW_TEXT_SCHEMA = StructType([StructField(c, StringType(), True) for c in RAW_COLUMNS])

DEVICES_SCHEMA = StructType([StructField("device_id", StringType(), False), StructField("model", StringType(), True)])
FAILURES_SCHEMA = StructType(
    [StructField("device_id", StringType(), False), StructField("failure_time", TimestampType(), False)]
)

# Clean, resampled readings: one row per device per grid point.
CLEAN_SCHEMA = StructType(
    [
        StructField("device_id", StringType(), False),
        StructField("model", StringType(), True),
        StructField("timestamp", TimestampType(), False),
        *[StructField(c, DoubleType(), True) for c in SENSORS],
        StructField("filled", BooleanType(), False),  # value imputed across a short gap
        StructField("segment", IntegerType(), False),  # increments after each gap too long to fill
    ]
)


# The windows' rows (plus the `split` partition column on disk); `WindowSpec` says what the features are.
WINDOW_SCHEMA = StructType(
    [
        StructField("device_id", StringType(), False),
        StructField("window_end", TimestampType(), False),
        StructField("features", ArrayType(FloatType(), False), False),
        StructField("label", IntegerType(), False),
    ]
)


# The feature that marks a window's real readings (1) from the zero steps padding a short history in front (0).
MASK_FEATURE = "observed"


def padded_steps(steps: Column, *, length: int, n_features: int) -> Column:
    """A window's flattened features from its `steps` (an array of per-reading arrays, oldest first, at most
    `length`): zero steps in front of a short history, so that every window holds length x n_features values."""
    zero_step = F.array_repeat(F.lit(0.0).cast("float"), n_features)
    return F.flatten(F.concat(F.array_repeat(zero_step, F.lit(length) - F.size(steps)), steps))


@dataclass(frozen=True)
class WindowSpec:
    """The data contract of a windows folder (its `windows.json`, written with the windows): every later step takes
    the windows' shape and meaning from here, not from the configuration in force when it runs."""

    length: int
    stride: int
    features: tuple[str, ...]
    interval_minutes: int
    horizon_days: float
    min_history: int | None = None  # readings a window needs; fewer than `length` are left-padded (MASK_FEATURE)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @classmethod
    def of(cls, config: PipelineConfig) -> WindowSpec:
        """The spec that `config`'s windows and ingest sections produce."""
        return cls(
            length=config.windows.length,
            stride=config.windows.stride,
            features=tuple(config.windows.features),
            interval_minutes=config.ingest.interval_minutes,
            horizon_days=config.windows.horizon_days,
        )

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "features": list(self.features)}

    @classmethod
    def from_dict(cls, data: dict) -> WindowSpec:
        return cls(
            length=int(data["length"]),
            stride=int(data["stride"]),
            features=tuple(data["features"]),
            interval_minutes=int(data["interval_minutes"]),
            horizon_days=float(data["horizon_days"]),
            min_history=data.get("min_history"),
        )
