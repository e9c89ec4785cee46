"""parse_and_validate on tiny inline records: each check, its boundaries, first-failure-wins and duplicates."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from pyspark.sql.types import StringType, StructField, StructType

from pipelines.config import IngestConfig, defaults
from pipelines.telemetry.ingest import QUARANTINE_COLUMNS, classify, parse_and_validate
from pipelines.telemetry.schema import RAW_TEXT_SCHEMA, SENSORS

CONFIG = defaults(IngestConfig)
# inlet, cpu, disk, fan1, fan2, power_on_hours, reallocated, read_errors, write_errors, fault_code
GOOD = ["22.5", "45.0", "35.0", "3200", "3150", "1000", "0", "0", "0", "0"]
SCHEMA = StructType([*RAW_TEXT_SCHEMA.fields, StructField("source_file", StringType(), True)])


def rec(device="d-1", ts="2026-01-01 00:00:00", model="m", source="a.csv", **sensors) -> tuple:
    values = dict(zip(SENSORS, GOOD))
    values.update(sensors)
    return (device, model, ts, *[values[c] for c in SENSORS], source)


def reasons(spark, records, known=None, config=CONFIG) -> list:
    """The reason of each record, in order (the `model` field is used as a record id)."""
    records = [(r[0], str(i), *r[2:]) for i, r in enumerate(records)]
    raw = spark.createDataFrame(records, SCHEMA)
    known_df = None
    if known is not None:
        known_df = spark.createDataFrame([(d, "m") for d in known], "device_id string, model string")
    got = dict(classify(raw, config=config, known_devices=known_df).select("model", "reason").collect())
    assert len(got) == len(records)
    return [got[str(i)] for i in range(len(records))]


def test_each_check_and_its_boundaries(spark):
    records = [
        rec(ts="2026-01-01 00:00:00"),  # ok
        rec(ts="2026-01-01 00:15:00", inlet_temp_c="-20", cpu_temp_c="120", fan1_rpm="0", fan2_rpm="30000"),
        rec(ts="2026-01-01 00:30:00", inlet_temp_c="-20.01"),  # out_of_bounds
        rec(ts="2026-01-01 00:45:00", disk_temp_c="120.01"),
        rec(ts="2026-01-01 01:00:00", fan2_rpm="30000.5"),
        rec(ts="2026-01-01 01:15:00", write_errors="-1"),
        rec(ts="2026-01-01 01:30:00", fault_code="-3"),
        rec(ts="2026-01-01 01:45:00", read_errors="0x10"),  # non_numeric
        rec(ts="2026-01-01 02:00:00", read_errors="1f"),
        rec(ts="2026-01-01 02:15:00", read_errors="-Infinity"),  # not_finite
        rec(ts="2026-01-01 02:30:00", read_errors=" "),  # missing_value
        rec(ts="2026-01-01 02:45:00", read_errors=None),
        rec(ts="2026-01-01 24:00:00"),  # bad_timestamp
        rec(ts="2026-01-01 3:00:00"),
        rec(device="  ", ts="2026-01-01 03:15:00"),  # missing_field
        rec(ts=None, source="b.csv"),
    ]
    assert reasons(spark, records) == [
        None,
        None,
        "out_of_bounds",
        "out_of_bounds",
        "out_of_bounds",
        "out_of_bounds",
        "out_of_bounds",
        "non_numeric",
        "non_numeric",
        "not_finite",
        "missing_value",
        "missing_value",
        "bad_timestamp",
        "bad_timestamp",
        "missing_field",
        "missing_field",
    ]


def test_first_failing_check_wins(spark):
    records = [
        rec(device="d-x", ts="2026-01-01 00:00:00", fan1_rpm="-1", cpu_temp_c="NaN"),  # not_finite before bounds
        rec(device="d-x", ts="2026-01-01 00:15:00", fan1_rpm="fast", cpu_temp_c=""),  # missing before non_numeric
        rec(device="d-x", ts="2026-01-01 00:30:00"),  # unknown device
        rec(device="d-x", ts="bad", fan1_rpm="fast"),  # timestamp before values
    ]
    assert reasons(spark, records, known=["d-1"]) == ["not_finite", "missing_value", "unknown_device", "bad_timestamp"]


def test_without_a_device_list_no_device_is_unknown(spark):
    assert reasons(spark, [rec(device="anything")]) == [None]


def test_config_bounds_are_used(spark):
    strict = dataclasses.replace(CONFIG, fan_rpm_max=3000.0, temperature_max_c=40.0)
    records = [
        rec(
            ts="2026-01-01 00:00:00",
            fan1_rpm="3000",
            fan2_rpm="3000",
            cpu_temp_c="40",
            inlet_temp_c="20",
            disk_temp_c="30",
        ),
        rec(ts="2026-01-01 00:15:00"),
    ]
    assert reasons(spark, records, config=strict) == [None, "out_of_bounds"]


def test_duplicates_keep_one_deterministically(spark):
    records = [
        rec(ts="2026-01-01 00:15:20", source="a.csv"),  # same grid point, further from it
        rec(ts="2026-01-01 00:15:00", source="b.csv"),  # kept: on the grid point
        rec(ts="2026-01-01 00:15:00", source="c.csv"),  # same instant, later file
        rec(ts="2026-01-01 00:15:00", source="c.csv", fan1_rpm="-1"),  # invalid: does not compete
        rec(device="d-2", ts="2026-01-01 00:15:00", source="c.csv"),  # other device
        rec(ts="2026-01-01 00:22:30", source="a.csv"),  # half-way rounds up: next grid point
    ]
    expected = ["duplicate", None, "duplicate", "out_of_bounds", None, None]
    assert reasons(spark, records) == expected
    assert reasons(spark, list(reversed(records))) == list(reversed(expected))


def test_clean_and_quarantine_outputs(spark):
    records = [
        rec(device=" d-1 ", model=" ", ts=" 2026-01-01 00:00:00 ", inlet_temp_c=" 21.5 ", power_on_hours="1e3"),
        rec(ts="2026-01-01 00:15:00", fan1_rpm="fast"),
    ]
    clean, quarantine = parse_and_validate(spark.createDataFrame(records, SCHEMA), config=CONFIG)
    (row,) = clean.collect()
    assert clean.columns == ["device_id", "model", "timestamp", *SENSORS]
    assert (row["device_id"], row["model"], row["inlet_temp_c"], row["power_on_hours"]) == ("d-1", None, 21.5, 1000.0)
    assert row["timestamp"] == dt.datetime(2026, 1, 1)  # the session time zone is UTC
    assert dict(clean.dtypes)["fan1_rpm"] == "double"
    (bad,) = quarantine.collect()
    assert quarantine.columns == QUARANTINE_COLUMNS
    assert (bad["fan1_rpm"], bad["reason"], bad["source_file"]) == ("fast", "non_numeric", "a.csv")
    assert bad["raw_line"] is None


def test_raw_text_only_needs_the_raw_columns(spark):
    raw = spark.createDataFrame([rec()[:-1]], RAW_TEXT_SCHEMA)
    clean, quarantine = parse_and_validate(raw, config=CONFIG)
    assert (clean.count(), quarantine.count()) == (1, 0)


def test_bad_config_is_refused(spark):
    raw = spark.createDataFrame([rec()[:-1]], RAW_TEXT_SCHEMA)
    with pytest.raises(ValueError, match="interval_minutes"):
        parse_and_validate(raw, config=dataclasses.replace(CONFIG, interval_minutes=0))
