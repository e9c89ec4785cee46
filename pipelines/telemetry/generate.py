"""Synthetic device telemetry: a fleet of devices, some of which degrade and fail.

Each device gets one reading every 15 minutes (columns `schema.RAW_COLUMNS`) with daily load cycles,
per-model differences, noise, dropped readings and multi-hour gaps. Failing devices show a signature that
unfolds over a per-device degradation period (disk temperature drift, an erratic and declining fan,
accelerating reallocated sectors and read errors, more frequent fault codes) and emit nothing after their
failure time. Healthy devices have confounders (hot days, isolated error bursts, lifetime counters whose level
grows with age), so the last reading alone does not tell failing devices apart.

Everything derives from (seed, device index), so a config always gives the same rows. The fleet is built on
the executors: the driver holds only the per-device plan (a few numbers per device).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from pipelines.config import ConfigError, GenerateConfig
from pipelines.io import fs
from pipelines.telemetry import schema

log = logging.getLogger(__name__)

READINGS_PER_DAY = 96  # one reading every 15 minutes

_PLAN_STREAM = 1
_READINGS_STREAM = 2

# fault_code values; 0 = no fault. Healthy devices show any of them now and then.
FAULT_THERMAL, FAULT_FAN, FAULT_DISK, FAULT_IO, FAULT_OTHER = 1, 2, 3, 4, 5

_FLOATS = [*schema.TEMPERATURES, *schema.FANS]
_INTS = [*schema.COUNTERS, "fault_code"]

# Typed columns of the written CSV; `day` becomes the partition folder.
OUTPUT_SCHEMA = StructType(
    [
        StructField("device_id", StringType(), False),
        StructField("model", StringType(), False),
        StructField("timestamp", StringType(), False),
        *[StructField(c, DoubleType() if c in _FLOATS else LongType(), False) for c in schema.SENSORS],
        StructField("day", StringType(), False),
    ]
)


@dataclass(frozen=True)
class ModelProfile:
    """How one device model behaves when healthy."""

    inlet_c: float  # mean inlet temperature
    cpu_rise_c: float  # CPU above inlet at full load
    disk_rise_c: float  # disk above inlet at idle
    fan_rpm: float  # fan speed at full load
    power_on_hours: tuple[int, int]  # range of the counter at the start of the period
    used_disk_share: float  # share of devices that start with some reallocated sectors
    bumps_per_month: float  # isolated error bursts on healthy devices
    read_errors_per_day: float


MODEL_PROFILES: dict[str, ModelProfile] = {
    "XS-100": ModelProfile(22.0, 30.0, 12.0, 4200.0, (500, 20000), 0.25, 0.5, 2.0),
    "XS-200": ModelProfile(23.0, 36.0, 10.0, 5600.0, (500, 12000), 0.15, 0.4, 1.5),
    "HD-9": ModelProfile(21.0, 24.0, 16.0, 3100.0, (5000, 45000), 0.45, 0.8, 4.0),
}


def model_profile(model: str) -> ModelProfile:
    """The profile of `model`; unknown names get a stable variation of a generic profile."""
    if model in MODEL_PROFILES:
        return MODEL_PROFILES[model]
    r = np.random.default_rng(zlib.crc32(model.encode("utf-8")))
    return ModelProfile(
        inlet_c=round(float(r.uniform(20, 24)), 1),
        cpu_rise_c=round(float(r.uniform(22, 38)), 1),
        disk_rise_c=round(float(r.uniform(9, 17)), 1),
        fan_rpm=round(float(r.uniform(3000, 6000)), -1),
        power_on_hours=(500, int(r.integers(10000, 45000))),
        used_disk_share=round(float(r.uniform(0.1, 0.5)), 2),
        bumps_per_month=round(float(r.uniform(0.3, 0.9)), 2),
        read_errors_per_day=round(float(r.uniform(1, 4)), 1),
    )


@dataclass(frozen=True)
class DevicePlan:
    """What the driver decides per device: identity, model and (for failing devices) when it fails."""

    index: int
    model: str
    failure_time: datetime | None = None  # naive UTC
    degradation_days: float = 0.0

    @property
    def device_id(self) -> str:
        return device_id(self.index)


def device_id(index: int) -> str:
    return f"dev-{index:05d}"


def device_rng(seed: int, index: int, stream: int = _READINGS_STREAM) -> np.random.Generator:
    """The Generator of one device (and one purpose), derived from (seed, device index)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, stream)))


def validate(config: GenerateConfig) -> None:
    """Refuse a config the generator cannot use, naming the key."""
    checks = [
        (config.devices >= 1, "generate.devices must be at least 1"),
        (config.days >= 1, "generate.days must be at least 1"),
        (len(config.models) >= 1, "generate.models must name at least one model"),
        (0.0 <= config.failing_fraction <= 1.0, "generate.failing_fraction must be in [0, 1]"),
        (
            0.0 < config.min_degradation_days <= config.max_degradation_days,
            "generate.min_degradation_days must be > 0 and <= generate.max_degradation_days",
        ),
        (0.0 <= config.missing_rate < 1.0, "generate.missing_rate must be in [0, 1)"),
        (config.gaps_per_device_month >= 0.0, "generate.gaps_per_device_month must be >= 0"),
        (config.max_gap_hours >= 0.0, "generate.max_gap_hours must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    start_time(config)


def start_time(config: GenerateConfig) -> datetime:
    """Midnight UTC of `generate.start` (naive datetime)."""
    try:
        return datetime.strptime(str(config.start), "%Y-%m-%d")
    except ValueError:
        raise ConfigError(f"generate.start must be a date YYYY-MM-DD, got {config.start!r}") from None


def fleet_plan(config: GenerateConfig) -> list[DevicePlan]:
    """One plan per device: model by round robin, round(devices * failing_fraction) failing devices.

    Failing devices are the ones with the smallest first draw of their plan stream; each fails at a whole
    minute inside the period, leaving its degradation period before it when the period is long enough.
    """
    validate(config)
    start = start_time(config)
    n_fail = int(round(config.devices * config.failing_fraction))
    if config.failing_fraction > 0 and n_fail == 0:
        n_fail = 1
    draws = []
    for index in range(config.devices):
        r = device_rng(config.seed, index, _PLAN_STREAM)
        draws.append((float(r.random()), float(r.random()), float(r.random())))
    ranking = sorted(range(config.devices), key=lambda i: (draws[i][0], i))
    failing = set(ranking[:n_fail])

    plans = []
    for index in range(config.devices):
        model = config.models[index % len(config.models)]
        if index not in failing:
            plans.append(DevicePlan(index, model))
            continue
        _, u_degradation, u_failure = draws[index]
        degradation = config.min_degradation_days + u_degradation * (
            config.max_degradation_days - config.min_degradation_days
        )
        # Earliest failure leaves the whole degradation period inside, or at least 3/4 of the period.
        earliest = min(degradation, 0.75 * config.days)
        minutes = int((earliest + u_failure * (config.days - earliest)) * 24 * 60)
        minutes = min(max(minutes, 1), config.days * 24 * 60 - 1)
        plans.append(DevicePlan(index, model, start + timedelta(minutes=minutes), round(degradation, 4)))
    return plans


def device_readings(
    index: int,
    model: str,
    config: GenerateConfig,
    *,
    failure_time: datetime | str | None = None,
    degradation_days: float = 0.0,
) -> pd.DataFrame:
    """The readings of one device as a pandas DataFrame with columns `schema.RAW_COLUMNS`.

    `timestamp` is datetime64 (naive UTC); temperatures and fans are floats rounded to 2 decimals;
    counters and `fault_code` are int64. A device with `failure_time` degrades over the
    `degradation_days` before it and has no reading at or after it.
    """
    rng = device_rng(config.seed, index)
    profile = model_profile(model)
    start = np.datetime64(start_time(config), "s")
    days = config.days
    n = days * READINGS_PER_DAY
    step = np.arange(n)
    t_days = step / READINGS_PER_DAY
    day = step // READINGS_PER_DAY
    hour = (step % READINGS_PER_DAY) / 4.0
    timestamps = start + step * np.timedelta64(15 * 60, "s")

    # Load: a daily curve peaking in the afternoon, lower at weekends, varying from day to day.
    peak_hour = rng.normal(14.0, 1.5)
    daily = 0.5 - 0.5 * np.cos(2 * np.pi * (hour - peak_hour + 12.0) / 24.0)
    weekday = (start.astype("datetime64[D]").view("int64") + 3 + np.arange(days)) % 7  # 0 = Monday
    day_level = np.where(weekday < 5, 1.0, 0.6) * rng.uniform(0.7, 1.1, days)
    load = np.clip(0.15 + 0.75 * daily * day_level[day] + _smooth_noise(rng, n, 0.04, 8), 0.0, 1.0)

    # Weather: a slow day-to-day walk plus occasional hot days (a confounder for disk and CPU temperature).
    day_temp = np.cumsum(rng.normal(0.0, 0.6, days))
    day_temp -= day_temp.mean()
    hot = rng.random(days) < 0.07
    day_temp += hot * rng.uniform(3.0, 7.0, days)
    weather = np.interp(t_days, np.arange(days) + 0.5, day_temp)
    inlet = (
        profile.inlet_c
        + rng.normal(0.0, 1.0)
        + weather
        + 1.0 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
        + 1.5 * load
        + rng.normal(0.0, 0.3, n)
    )
    cpu = inlet + profile.cpu_rise_c * (0.35 + 0.65 * load) + _smooth_noise(rng, n, 0.8, 4) + rng.normal(0.0, 0.5, n)
    disk = (
        inlet
        + profile.disk_rise_c
        + rng.normal(0.0, 1.5)
        + 4.0 * load
        + _smooth_noise(rng, n, 0.3, 16)
        + rng.normal(0.0, 0.4, n)
    )
    fans = []
    for _ in range(2):
        fan_level = profile.fan_rpm * rng.normal(1.0, 0.03)
        fans.append(
            fan_level * (0.55 + 0.45 * load + 0.02 * (inlet - profile.inlet_c)) * (1.0 + rng.normal(0.0, 0.015, n))
        )

    # Counters of a healthy device: lifetime totals that grow with age (so their level says little on its
    # own), slow background errors and isolated bursts.
    power_on0 = int(rng.integers(*profile.power_on_hours))
    age_days = power_on0 / 24.0
    sectors0 = int(rng.lognormal(3.0, 1.5)) if rng.random() < profile.used_disk_share else 0
    read0 = int(age_days * profile.read_errors_per_day * rng.lognormal(0.0, 0.8))
    write0 = int(age_days * 0.3 * rng.lognormal(0.0, 0.8))
    sectors_inc = rng.poisson(0.05 / READINGS_PER_DAY, n)
    read_inc = rng.poisson(profile.read_errors_per_day / READINGS_PER_DAY, n)
    write_inc = rng.poisson(0.3 / READINGS_PER_DAY, n)
    for _ in range(rng.poisson(profile.bumps_per_month * days / 30.0)):
        at = rng.integers(0, n)
        sectors_inc[at] += rng.integers(1, 24)
        read_inc[at] += rng.integers(5, 120)
        write_inc[at] += rng.integers(0, 10)
    fault = np.where(rng.random(n) < 0.0015, rng.integers(1, 6, n), 0)
    thermal = (cpu > profile.inlet_c + profile.cpu_rise_c + 6.0) & (rng.random(n) < 0.1)
    fault = np.where(thermal, FAULT_THERMAL, fault)

    # Dropped readings and gaps.
    keep = rng.random(n) >= config.missing_rate
    n_gaps = rng.poisson(config.gaps_per_device_month * days / 30.0) if config.max_gap_hours > 0 else 0
    for _ in range(n_gaps):
        hours = rng.uniform(min(2.0, config.max_gap_hours), config.max_gap_hours)
        at = int(rng.integers(0, n))
        keep[at : at + int(hours * 4)] = False

    # Everything above is drawn the same whether or not the device fails.
    if failure_time is not None:
        failure = pd.Timestamp(failure_time).to_datetime64().astype("datetime64[s]")
        keep &= timestamps < failure
        fail_day = (failure - start) / np.timedelta64(1, "D")
        length = max(float(degradation_days), 1.0 / READINGS_PER_DAY)
        p = np.clip((t_days - (fail_day - length)) / length, 0.0, 1.0)
        p_prev = np.concatenate([[p[0]], p[:-1]])

        disk += rng.uniform(3.0, 8.0) * p**1.5
        bad = int(rng.integers(0, 2))
        fans[bad] = fans[bad] * (1.0 - rng.uniform(0.25, 0.5) * p**2) * (1.0 + rng.normal(0.0, 1.0, n) * 0.25 * p**1.5)
        dropout = rng.random(n) < 0.04 * p
        fans[bad] = np.where(dropout, fans[bad] * rng.uniform(0.0, 0.3, n), fans[bad])

        # Expected cumulative increase total * p**k: slow at first, accelerating towards the failure.
        sectors_inc += rng.poisson(rng.uniform(40, 400) * (p**3 - p_prev**3))
        read_inc += rng.poisson(rng.uniform(300, 3000) * (p**2.5 - p_prev**2.5))
        write_inc += rng.poisson(rng.uniform(20, 200) * (p**3 - p_prev**3))
        faulty = rng.random(n) < 0.25 * p**2
        codes = rng.choice([FAULT_FAN, FAULT_DISK, FAULT_IO], size=n, p=[0.3, 0.45, 0.25])
        fault = np.where(faulty, codes, fault)

    power_on = power_on0 + step // 4
    frame = pd.DataFrame(
        {
            "device_id": device_id(index),
            "model": model,
            "timestamp": timestamps.astype("datetime64[ns]"),
            "inlet_temp_c": inlet,
            "cpu_temp_c": cpu,
            "disk_temp_c": disk,
            "fan1_rpm": np.maximum(fans[0], 0.0),
            "fan2_rpm": np.maximum(fans[1], 0.0),
            "power_on_hours": power_on,
            "reallocated_sectors": sectors0 + np.cumsum(sectors_inc),
            "read_errors": read0 + np.cumsum(read_inc),
            "write_errors": write0 + np.cumsum(write_inc),
            "fault_code": fault,
        }
    )
    frame[_FLOATS] = frame[_FLOATS].round(2)
    frame[_INTS] = frame[_INTS].astype("int64")
    return frame[keep].reset_index(drop=True)


def _smooth_noise(rng: np.random.Generator, n: int, scale: float, width: int) -> np.ndarray:
    """Autocorrelated noise with standard deviation `scale` (a moving sum of `width` normals)."""
    raw = rng.normal(0.0, scale / np.sqrt(width), n + width - 1)
    return np.convolve(raw, np.ones(width), mode="valid")


def plan_readings(plan: DevicePlan, config: GenerateConfig) -> pd.DataFrame:
    return device_readings(
        plan.index, plan.model, config, failure_time=plan.failure_time, degradation_days=plan.degradation_days
    )


def output_records(frame: pd.DataFrame) -> Iterator[tuple]:
    """Rows of `OUTPUT_SCHEMA` (plain Python values) from a `device_readings` frame."""
    text = np.datetime_as_string(frame["timestamp"].to_numpy().astype("datetime64[s]"), unit="s")
    stamps = [s.replace("T", " ") for s in text.tolist()]
    days = [s[:10] for s in stamps]
    columns = [frame["device_id"].tolist(), frame["model"].tolist(), stamps]
    columns += [frame[c].tolist() for c in schema.SENSORS]
    columns.append(days)
    return zip(*columns)


def devices_csv(plans: Iterable[DevicePlan]) -> str:
    return "device_id,model\n" + "".join(f"{p.device_id},{p.model}\n" for p in plans)


def failures_csv(plans: Iterable[DevicePlan]) -> str:
    lines = [f"{p.device_id},{p.failure_time:%Y-%m-%d %H:%M:%S}\n" for p in plans if p.failure_time is not None]
    return "device_id,failure_time\n" + "".join(lines)


def generate_fleet(
    spark: SparkSession, config: GenerateConfig, out_uri: str, *, num_partitions: int | None = None
) -> dict:
    """Generate the fleet on the executors and commit `out_uri` atomically; return a small summary.

    Layout: `readings/day=YYYY-MM-DD/part-*.csv[.gz]` (header, `schema.RAW_COLUMNS`), `devices.csv`,
    `failures.csv`, `_SUCCESS`. `num_partitions` (default: Spark's default parallelism) is the number of
    device slices, hence of files per day; the same config and partitions give byte-identical files.
    """
    plans = fleet_plan(config)
    sc = spark.sparkContext
    slices = max(1, min(len(plans), num_partitions or sc.defaultParallelism))
    rows = sc.accumulator(0)

    def generate(part: Iterable[DevicePlan]) -> Iterator[tuple]:
        for plan in part:
            frame = plan_readings(plan, config)
            rows.add(len(frame))
            yield from output_records(frame)

    records = sc.parallelize(plans, slices).mapPartitions(generate)
    df = spark.createDataFrame(records, OUTPUT_SCHEMA, verifySchema=False)
    df = df.sortWithinPartitions("day", "device_id", "timestamp")
    n_failing = sum(p.failure_time is not None for p in plans)
    log.info("generating %d devices (%d failing) over %d days in %d slices", len(plans), n_failing, config.days, slices)
    with fs.atomic_output(spark, out_uri) as tmp:
        (
            df.write.partitionBy("day")
            .option("header", True)
            .option("compression", "gzip" if config.gzip else "none")
            .csv(f"{tmp}/readings")
        )
        fs.write_text(spark, f"{tmp}/devices.csv", devices_csv(plans))
        fs.write_text(spark, f"{tmp}/failures.csv", failures_csv(plans))
    summary = {
        "out": out_uri,
        "devices": len(plans),
        "failing_devices": n_failing,
        "days": config.days,
        "start": str(config.start),
        "rows": int(rows.value),
        "gzip": bool(config.gzip),
    }
    log.info("wrote %s", summary)
    return summary
