from datetime import datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F

from pipelines.config import WindowsConfig, defaults
from pipelines.telemetry.windows import (
    assign_splits,
    build_window_dataset,
    downsample_negatives,
    fit_normalizer,
    make_windows,
    normalize,
)

START = datetime(2026, 1, 1)
STEP = timedelta(minutes=15)
READING_COLUMNS = "device_id string, timestamp timestamp, segment int, f1 double, f2 double"


def _readings(spark, devices: dict[str, int], n: int, segment_break: dict[str, int] | None = None):
    """f1 = reading index, f2 = device number: a window's content tells where it came from."""
    rows = []
    for device, number in devices.items():
        for i in range(n):
            segment = int(segment_break is not None and device in segment_break and i >= segment_break[device])
            rows.append((device, START + i * STEP, segment, float(i), float(number)))
    return spark.createDataFrame(rows, READING_COLUMNS)


def _failures(spark, rows):
    return spark.createDataFrame(rows, "device_id string, failure_time timestamp")


def _windows(spark, readings, failures, **kw):
    args = dict(features=["f1", "f2"], length=8, stride=4, horizon_days=1.0, interval_minutes=15)
    args.update(kw)
    return make_windows(readings, failures, **args).orderBy("device_id", "window_end").collect()


def test_window_shape_order_and_no_device_mixing(spark):
    readings = _readings(spark, {"a": 1, "b": 2}, n=40)
    rows = _windows(spark, readings, _failures(spark, []))
    assert rows, "expected windows"
    for row in rows:
        block = np.array(row.features).reshape(8, 2)
        end_index = int((row.window_end - START) / STEP)
        assert block[:, 0].tolist() == list(range(end_index - 7, end_index + 1))  # consecutive, in time order
        assert set(block[:, 1]) == {1.0 if row.device_id == "a" else 2.0}  # one device per window
        assert end_index % 4 == 0  # ends aligned to the stride grid
    # 40 readings, ends at index 7..39 on multiples of 4 -> 8, 12, ..., 36; none censored (no observed_until)
    assert [int((r.window_end - START) / STEP) for r in rows if r.device_id == "a"] == list(range(8, 40, 4))


def test_windows_never_cross_a_segment_break(spark):
    readings = _readings(spark, {"a": 1}, n=40, segment_break={"a": 20})
    for row in _windows(spark, readings, _failures(spark, [])):
        first = np.array(row.features).reshape(8, 2)[0, 0]
        last = np.array(row.features).reshape(8, 2)[-1, 0]
        assert (first >= 20) == (last >= 20)


def test_label_at_the_horizon_boundary(spark):
    # Failure 1 day after reading 24: the window ending at 24 is exactly at the horizon -> positive;
    # the one ending at 20 is one stride too early -> negative.
    failure = START + 24 * STEP + timedelta(days=1)
    readings = _readings(spark, {"a": 1}, n=40)
    labels = {
        int((r.window_end - START) / STEP): r.label
        for r in _windows(spark, readings, _failures(spark, [("a", failure)]))
    }
    assert labels[20] == 0
    assert labels[24] == 1
    assert labels[36] == 1


def test_censored_negatives_are_dropped(spark):
    readings = _readings(spark, {"a": 1, "b": 2}, n=40)
    until = START + 39 * STEP
    failure = START + 39 * STEP + timedelta(hours=1)
    rows = _windows(spark, readings, _failures(spark, [("b", failure)]), horizon_days=0.25, observed_until=until)
    a_ends = [int((r.window_end - START) / STEP) for r in rows if r.device_id == "a"]
    # a: horizon 6 h = 24 readings; windows ending after reading 15 cannot be labelled
    assert a_ends == [8, 12]
    b_ends = [int((r.window_end - START) / STEP) for r in rows if r.device_id == "b"]
    assert b_ends == list(range(8, 40, 4))  # a known failure labels every window


def test_splits_are_disjoint_stratified_and_deterministic(spark):
    devices = spark.createDataFrame([(f"d{i:03d}",) for i in range(200)], "device_id string")
    failures = _failures(spark, [(f"d{i:03d}", START) for i in range(0, 200, 5)])
    first = assign_splits(devices, failures, val_fraction=0.2, test_fraction=0.25, seed=3)
    again = assign_splits(devices, failures, val_fraction=0.2, test_fraction=0.25, seed=3)
    other = assign_splits(devices, failures, val_fraction=0.2, test_fraction=0.25, seed=4)
    rows = {r.device_id: (r.split, r.failing) for r in first.collect()}
    assert len(rows) == 200  # each device exactly once
    assert rows == {r.device_id: (r.split, r.failing) for r in again.collect()}
    assert rows != {r.device_id: (r.split, r.failing) for r in other.collect()}
    for failing, total in ((True, 40), (False, 160)):
        counts = {s: sum(1 for v in rows.values() if v == (s, failing)) for s in ("train", "val", "test")}
        assert counts["test"] == pytest.approx(0.25 * total, abs=1)
        assert counts["val"] == pytest.approx(0.2 * total, abs=1)


def test_normalisation_is_fitted_on_the_training_split_only(spark):
    readings = _readings(spark, {"a": 1, "b": 2, "c": 3}, n=10)
    readings = readings.withColumn("f2", F.when(F.col("device_id") == "c", 1e6).otherwise(F.col("f2")))
    train = readings.where(F.col("device_id") != "c")  # c is a test device with extreme values
    stats = fit_normalizer(train, features=["f1", "f2"])
    assert stats["mean"] == pytest.approx([4.5, 1.5])
    assert stats["std"][1] == pytest.approx(0.5)
    normalized = normalize(train, stats).agg(F.mean("f1"), F.stddev_pop("f2")).first()
    assert normalized[0] == pytest.approx(0.0, abs=1e-9) and normalized[1] == pytest.approx(1.0)


def test_downsampling_keeps_positives_and_thins_negatives(spark):
    rows = [(f"d{i}", START, [0.0], int(i < 50)) for i in range(2050)]
    windows = spark.createDataFrame(rows, "device_id string, window_end timestamp, features array<float>, label int")
    kept = {
        r["label"]: r["count"]
        for r in downsample_negatives(windows, negatives_per_positive=2.0, seed=1).groupBy("label").count().collect()
    }
    assert kept[1] == 50
    assert 60 < kept[0] < 140
    untouched = downsample_negatives(windows, negatives_per_positive=0, seed=1).count()
    assert untouched == 2050

    # Only the named split is thinned, by its own counts; the others pass whole.
    split = F.when(F.col("device_id").isin("d0", "d1", *[f"d{i}" for i in range(1000, 2000)]), "test").otherwise(
        "train"
    )
    with_split = windows.withColumn("split", split)
    kept = {
        (r["split"], r["label"]): r["count"]
        for r in downsample_negatives(with_split, negatives_per_positive=2.0, seed=1, split="train")
        .groupBy("split", "label")
        .count()
        .collect()
    }
    assert kept[("test", 1)] == 2 and kept[("test", 0)] == 1000
    assert kept[("train", 1)] == 48
    assert 56 < kept[("train", 0)] < 136


def test_build_window_dataset_keeps_devices_in_one_split(spark):
    devices = {f"d{i}": i for i in range(12)}
    readings = _readings(spark, devices, n=120)
    failures = _failures(spark, [("d1", START + 125 * STEP), ("d7", START + 130 * STEP)])
    config = defaults(
        WindowsConfig,
        length=8,
        stride=4,
        horizon_days=0.25,
        val_fraction=0.25,
        test_fraction=0.25,
        negatives_per_positive=0,
        features=["f1", "f2"],
    )
    windows, stats = build_window_dataset(readings, failures, config=config, interval_minutes=15)
    per_device = windows.groupBy("device_id").agg(F.countDistinct("split").alias("n")).collect()
    assert len(per_device) == 12 and all(r.n == 1 for r in per_device)
    assert windows.where("label = 1").select("device_id").distinct().count() == 2
    # healthy devices keep only windows whose horizon ends inside the observed period (reading 119)
    latest_negative = windows.where("device_id not in ('d1', 'd7')").agg(F.max("window_end")).first()[0]
    assert latest_negative <= START + (119 - 24) * STEP
    assert stats["features"] == ["f1", "f2"]
    # normalisation statistics come from the training devices alone (f2 is the device number)
    train_devices = [
        int(r.device_id[1:]) for r in windows.where("split = 'train'").select("device_id").distinct().collect()
    ]
    assert 0 < len(train_devices) < 12
    assert stats["mean"][1] == pytest.approx(np.mean(train_devices))
