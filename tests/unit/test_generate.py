"""Pure tests of the telemetry generator: one device at a time, no Spark."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.config import ConfigError, GenerateConfig, defaults
from pipelines.telemetry import schema
from pipelines.telemetry.generate import (
    READINGS_PER_DAY,
    device_readings,
    devices_csv,
    failures_csv,
    fleet_plan,
    model_profile,
    output_records,
    plan_readings,
)

CONFIG = defaults(GenerateConfig, devices=40, days=10, min_degradation_days=3.0, max_degradation_days=6.0, seed=11)


def _daily(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.groupby(frame["timestamp"].dt.floor("D"))[column].mean()


def test_same_seed_same_rows_other_seed_other_rows():
    a = device_readings(3, "XS-100", CONFIG)
    b = device_readings(3, "XS-100", CONFIG)
    pd.testing.assert_frame_equal(a, b)
    c = device_readings(3, "XS-100", replace(CONFIG, seed=12))
    assert not a[schema.SENSORS].head(50).equals(c[schema.SENSORS].head(50))
    assert not a[schema.SENSORS].head(50).equals(device_readings(4, "XS-100", CONFIG)[schema.SENSORS].head(50))


def test_columns_types_and_15_minute_grid():
    frame = device_readings(0, "HD-9", CONFIG)
    assert list(frame.columns) == schema.RAW_COLUMNS
    assert set(frame["device_id"]) == {"dev-00000"} and set(frame["model"]) == {"HD-9"}
    start = pd.Timestamp(CONFIG.start)
    offsets = (frame["timestamp"] - start) / pd.Timedelta(minutes=15)
    assert (offsets == offsets.round()).all()
    assert offsets.min() >= 0 and offsets.max() < CONFIG.days * READINGS_PER_DAY
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique
    for column in [*schema.COUNTERS, "fault_code"]:
        assert frame[column].dtype == np.int64
    for column in schema.COUNTERS:
        assert (frame[column].diff().dropna() >= 0).all(), column
    assert frame["fault_code"].between(0, 9).all()
    floats = frame[[*schema.TEMPERATURES, *schema.FANS]]
    assert (floats == floats.round(2)).all().all()
    assert frame["disk_temp_c"].between(15, 90).all() and frame["fan1_rpm"].between(0, 20000).all()


def test_rows_per_device_are_the_grid_minus_missing_readings_and_gaps():
    full = device_readings(1, "XS-200", replace(CONFIG, missing_rate=0.0, gaps_per_device_month=0.0))
    assert len(full) == CONFIG.days * READINGS_PER_DAY
    sparse = device_readings(1, "XS-200", replace(CONFIG, missing_rate=0.05, gaps_per_device_month=0.0))
    assert 0.92 * len(full) < len(sparse) < 0.98 * len(full)
    gappy = device_readings(1, "XS-200", replace(CONFIG, missing_rate=0.0, gaps_per_device_month=30.0, max_gap_hours=6))
    steps = gappy["timestamp"].diff().dropna()
    assert steps.max() > pd.Timedelta(hours=1)
    assert steps.max() <= pd.Timedelta(hours=6, minutes=15) * 2  # two gaps may touch


def test_cpu_and_fans_follow_a_daily_load_cycle():
    frame = device_readings(2, "XS-100", replace(CONFIG, missing_rate=0.0, gaps_per_device_month=0.0))
    hour = frame["timestamp"].dt.hour
    afternoon, night = frame[hour.between(13, 16)], frame[hour.between(2, 5)]
    assert afternoon["cpu_temp_c"].mean() > night["cpu_temp_c"].mean() + 5
    assert afternoon["fan1_rpm"].mean() > night["fan1_rpm"].mean() * 1.1


def test_models_differ():
    means = {
        m: pd.concat([device_readings(i, m, CONFIG) for i in range(3)])[["fan1_rpm", "disk_temp_c"]].mean()
        for m in ["XS-100", "XS-200", "HD-9"]
    }
    assert means["XS-200"]["fan1_rpm"] > means["XS-100"]["fan1_rpm"] > means["HD-9"]["fan1_rpm"]
    assert model_profile("ZZ-1") == model_profile("ZZ-1") and model_profile("ZZ-1") != model_profile("ZZ-2")


def test_failing_device_stops_at_failure_and_degrades_over_days():
    failure = datetime(2026, 1, 9, 13, 7)
    frame = device_readings(5, "XS-100", CONFIG, failure_time=failure, degradation_days=5.0)
    healthy = device_readings(5, "XS-100", CONFIG)
    assert frame["timestamp"].max() < pd.Timestamp(failure)
    assert frame["timestamp"].max() > pd.Timestamp(failure) - pd.Timedelta(hours=CONFIG.max_gap_hours + 1)
    last_day = frame[frame["timestamp"] >= pd.Timestamp(failure) - pd.Timedelta(days=1)]
    first_days = frame[frame["timestamp"] < pd.Timestamp(CONFIG.start) + pd.Timedelta(days=2)]
    assert last_day["reallocated_sectors"].mean() > first_days["reallocated_sectors"].mean() + 30
    assert last_day["read_errors"].mean() > first_days["read_errors"].mean() + 100
    assert (last_day["fault_code"] > 0).mean() > 5 * (first_days["fault_code"] > 0).mean()
    ratio = frame["fan1_rpm"] / frame["fan2_rpm"]
    assert ratio[last_day.index].std() > 3 * ratio[first_days.index].std()  # one fan erratic
    # Same device without the failure: identical until degradation starts, clearly worse at the end
    # (its own first days are no fair baseline for temperatures: the weather moves them by a few degrees).
    twin = healthy.set_index("timestamp").loc[frame["timestamp"]].reset_index()
    early = frame["timestamp"] < pd.Timestamp(failure) - pd.Timedelta(days=5)
    assert frame[early][schema.SENSORS].equals(twin[early][schema.SENSORS])
    late = twin.index.isin(last_day.index)
    assert (last_day["disk_temp_c"] - twin.loc[late, "disk_temp_c"]).mean() > 2
    assert (last_day["reallocated_sectors"] - twin.loc[late, "reallocated_sectors"]).mean() > 30
    # The trend unfolds: sectors rise faster and faster over the degradation period.
    sectors = _daily(frame, "reallocated_sectors").diff().dropna().to_numpy()
    assert sectors[-2:].sum() > 3 * sectors[-5:-3].sum() >= 0


def test_fleet_plan_failures_inside_the_period_after_their_degradation():
    plans = fleet_plan(CONFIG)
    assert [p.index for p in plans] == list(range(CONFIG.devices))
    assert {p.model for p in plans} == set(CONFIG.models)
    failing = [p for p in plans if p.failure_time is not None]
    assert len(failing) == round(CONFIG.devices * CONFIG.failing_fraction)
    start = datetime(2026, 1, 1)
    for p in failing:
        assert CONFIG.min_degradation_days <= p.degradation_days <= CONFIG.max_degradation_days
        assert start + timedelta(days=p.degradation_days) <= p.failure_time < start + timedelta(days=CONFIG.days)
    assert len({p.failure_time for p in failing}) == len(failing)
    assert fleet_plan(CONFIG) == plans
    assert fleet_plan(replace(CONFIG, seed=12)) != plans
    # Degradation longer than the period: failure still inside, late in it.
    long = fleet_plan(replace(CONFIG, min_degradation_days=30, max_degradation_days=40))
    for p in long:
        if p.failure_time is not None:
            assert start + timedelta(days=0.75 * CONFIG.days) <= p.failure_time < start + timedelta(days=CONFIG.days)


def test_last_reading_alone_does_not_separate_failing_from_healthy():
    plans = fleet_plan(CONFIG)
    last = pd.DataFrame([plan_readings(p, CONFIG).iloc[-1] for p in plans])
    failing = last["device_id"].isin([p.device_id for p in plans if p.failure_time is not None])
    assert failing.sum() == 8
    for column in ["reallocated_sectors", "disk_temp_c", "read_errors"]:
        assert last.loc[~failing, column].max() > last.loc[failing, column].min(), column
    # ...but failing devices are clearly worse on average.
    assert last.loc[failing, "reallocated_sectors"].mean() > 3 * last.loc[~failing, "reallocated_sectors"].mean()


def test_healthy_devices_have_confounders():
    plans = [p for p in fleet_plan(CONFIG) if p.failure_time is None]
    frames = [plan_readings(p, CONFIG) for p in plans]
    bumps = sum((f["read_errors"].diff() >= 5).any() for f in frames)
    assert 0 < bumps < len(frames)
    hot = sum(_daily(f, "inlet_temp_c").max() > _daily(f, "inlet_temp_c").median() + 3 for f in frames)
    assert 0 < hot < len(frames)
    assert sum((f["fault_code"] > 0).any() for f in frames) > 0


def test_output_records_and_small_files():
    plans = fleet_plan(replace(CONFIG, devices=3, failing_fraction=0.34))
    frame = plan_readings(plans[0], CONFIG).head(2)
    rows = list(output_records(frame))
    assert rows[0][:3] == ("dev-00000", "XS-100", "2026-01-01 00:00:00")
    assert rows[0][-1] == "2026-01-01" and len(rows[0]) == len(schema.RAW_COLUMNS) + 1
    assert all(type(v) is int for v in rows[0][3 + schema.SENSORS.index("power_on_hours") : -1])
    assert devices_csv(plans).splitlines() == [
        "device_id,model",
        "dev-00000,XS-100",
        "dev-00001,XS-200",
        "dev-00002,HD-9",
    ]
    lines = failures_csv(plans).splitlines()
    assert lines[0] == "device_id,failure_time" and len(lines) == 2
    assert lines[1].split(",")[1] == f"{next(p for p in plans if p.failure_time).failure_time:%Y-%m-%d %H:%M:%S}"


@pytest.mark.parametrize(
    "change",
    [
        {"devices": 0},
        {"days": 0},
        {"models": []},
        {"failing_fraction": 1.5},
        {"missing_rate": 1.0},
        {"min_degradation_days": 5.0, "max_degradation_days": 2.0},
        {"start": "January"},
    ],
)
def test_unusable_config_is_refused(change):
    with pytest.raises(ConfigError, match="generate"):
        fleet_plan(replace(CONFIG, **change))
