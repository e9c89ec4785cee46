"""resample(): grid alignment, short gaps forward-filled and flagged, long gaps starting a new segment."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from pipelines.telemetry.resample import resample
from pipelines.telemetry.schema import CLEAN_SCHEMA, SENSORS

INPUT_SCHEMA = StructType(
    [
        StructField("device_id", StringType(), False),
        StructField("model", StringType(), True),
        StructField("timestamp", TimestampType(), False),
        *[StructField(c, DoubleType(), True) for c in SENSORS],
    ]
)
T0 = dt.datetime(2026, 1, 1)


def reading(device: str, minutes: float, value: float) -> tuple:
    return (device, "XS-100", T0 + dt.timedelta(minutes=minutes), *[value] * len(SENSORS))


def run(spark, rows, max_fill=4):
    out = resample(spark.createDataFrame(rows, INPUT_SCHEMA), interval_minutes=15, max_fill_gap_readings=max_fill)
    assert out.schema == CLEAN_SCHEMA
    return [
        (r["device_id"], int((r["timestamp"] - T0).total_seconds() // 60), r["inlet_temp_c"], r["filled"], r["segment"])
        for r in out.orderBy("device_id", "timestamp").collect()
    ]


def test_gaps_filled_or_segmented(spark):
    # d-1: on the grid; 2 missing (filled), then exactly 4 missing (filled), then 5 missing (new segment).
    minutes = [0, 15, 60, 135, 225, 240]
    rows = [reading("d-1", m, float(i)) for i, m in enumerate(minutes)]
    got = run(spark, rows)
    assert got == [
        ("d-1", 0, 0.0, False, 0),
        ("d-1", 15, 1.0, False, 0),
        ("d-1", 30, 1.0, True, 0),
        ("d-1", 45, 1.0, True, 0),
        ("d-1", 60, 2.0, False, 0),
        ("d-1", 75, 2.0, True, 0),
        ("d-1", 90, 2.0, True, 0),
        ("d-1", 105, 2.0, True, 0),
        ("d-1", 120, 2.0, True, 0),
        ("d-1", 135, 3.0, False, 0),
        ("d-1", 225, 4.0, False, 1),  # 150..210 missing: 5 > 4, not filled
        ("d-1", 240, 5.0, False, 1),
    ]


def test_off_grid_readings_go_to_the_nearest_grid_point(spark):
    # First reading at an arbitrary time; one slot gets two readings: the closer one wins.
    rows = [
        reading("d-2", 7 * 60 + 53, 1.0),  # 07:53 -> 08:00
        reading("d-2", 8 * 60 + 7.4, 2.0),  # 08:07:24 -> 08:00, further away
        reading("d-2", 8 * 60 + 22.5, 3.0),  # half-way rounds up -> 08:30
    ]
    assert run(spark, rows) == [
        ("d-2", 480, 1.0, False, 0),
        ("d-2", 495, 1.0, True, 0),
        ("d-2", 510, 3.0, False, 0),
    ]


def test_devices_are_independent_and_zero_fill_segments_every_gap(spark):
    rows = [reading("a", 0, 1.0), reading("a", 30, 2.0), reading("b", 15, 5.0), reading("b", 30, 6.0)]
    assert run(spark, rows, max_fill=0) == [
        ("a", 0, 1.0, False, 0),
        ("a", 30, 2.0, False, 1),
        ("b", 15, 5.0, False, 0),
        ("b", 30, 6.0, False, 0),
    ]


def test_all_sensors_and_model_are_carried_forward(spark):
    later = T0 + dt.timedelta(minutes=30)
    rows = [("d", "HD-9", T0, *[float(i) for i in range(10)]), ("d", "HD-9", later, *[9.0] * 10)]
    out = resample(spark.createDataFrame(rows, INPUT_SCHEMA), interval_minutes=15, max_fill_gap_readings=1)
    filled = out.where("filled").collect()
    assert len(filled) == 1
    assert [filled[0][c] for c in SENSORS] == [float(i) for i in range(10)]
    assert filled[0]["model"] == "HD-9" and filled[0]["timestamp"] == T0 + dt.timedelta(minutes=15)


def test_bad_parameters_are_refused(spark):
    df = spark.createDataFrame([], INPUT_SCHEMA)
    with pytest.raises(ValueError):
        resample(df, interval_minutes=0, max_fill_gap_readings=1)
    with pytest.raises(ValueError):
        resample(df, interval_minutes=15, max_fill_gap_readings=-1)
