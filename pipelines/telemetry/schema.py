"""Column names and schemas shared by the telemetry generator, ingest and windows.

Raw layout written by the generator (and expected from real fleets):
  <root>/readings/day=YYYY-MM-DD/part-*.csv[.gz]   header row; columns RAW_COLUMNS
  <root>/devices.csv                                 device_id,model  (the known fleet)
  <root>/failures.csv                                device_id,failure_time
Timestamps are UTC, "yyyy-MM-dd HH:mm:ss".
"""
from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

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
