"""The fleet generator on Spark: layout, content, determinism, gzip, and the job as a subprocess."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from pipelines import PROJECT_ROOT
from pipelines.config import GenerateConfig, defaults
from pipelines.telemetry import schema
from pipelines.telemetry.generate import fleet_plan, generate_fleet

CONFIG = defaults(
    GenerateConfig, devices=6, days=4, failing_fraction=0.34, min_degradation_days=1.0, max_degradation_days=2.0, seed=5
)
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]


def _contents(out: Path) -> dict[str, list[bytes]]:
    """Per day folder, the sorted (decompressed) contents of its part files."""
    result = {}
    for day in sorted((out / "readings").glob("day=*")):
        parts = sorted(day.glob("part-*"))
        result[day.name] = sorted(
            gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in parts
        )
    return result


@pytest.fixture(scope="module")
def fleet(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet") / "plain"
    summary = generate_fleet(spark, CONFIG, str(out), num_partitions=2)
    readings = spark.read.csv(str(out / "readings"), header=True, schema=schema.RAW_TEXT_SCHEMA).toPandas()
    return out, summary, readings


def test_layout_and_small_files(fleet):
    out, summary, _ = fleet
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # local FS adds .crc files
    assert names == ["_SUCCESS", "devices.csv", "failures.csv", "readings"]
    assert not [p for p in out.parent.iterdir() if p.name != "plain"]  # no temporary siblings left
    assert sorted(p.name for p in (out / "readings").glob("day=*")) == [f"day={d}" for d in DAYS]
    parts = list((out / "readings").glob("day=*/part-*"))
    assert parts and all(p.name.endswith(".csv") for p in parts)
    header = parts[0].read_text().splitlines()[0]
    assert header == ",".join(schema.RAW_COLUMNS)

    devices = pd.read_csv(out / "devices.csv")
    assert list(devices.columns) == ["device_id", "model"]
    assert devices["device_id"].tolist() == [f"dev-{i:05d}" for i in range(6)]
    assert set(devices["model"]) == set(CONFIG.models)
    failures = pd.read_csv(out / "failures.csv", parse_dates=["failure_time"])
    plans = [p for p in fleet_plan(CONFIG) if p.failure_time is not None]
    assert failures["device_id"].tolist() == [p.device_id for p in plans]
    assert failures["failure_time"].tolist() == [pd.Timestamp(p.failure_time) for p in plans]
    assert summary["devices"] == 6 and summary["failing_devices"] == 2 == len(failures)


def test_readings_content(fleet):
    out, summary, readings = fleet
    assert len(readings) == summary["rows"]
    assert readings["timestamp"].str.fullmatch(r"2026-01-0[1-4] \d\d:(00|15|30|45):00").all()
    for column in [*schema.COUNTERS, "fault_code"]:
        assert readings[column].str.fullmatch(r"\d+").all(), column
    for column in [*schema.TEMPERATURES, *schema.FANS]:
        assert readings[column].str.fullmatch(r"\d+(\.\d{1,2})?").all(), column
    assert not readings.duplicated(["device_id", "timestamp"]).any()
    # Every day folder holds that day's readings only.
    for day in DAYS:
        text = "".join(p.read_text() for p in (out / "readings" / f"day={day}").glob("part-*.csv"))
        stamps = re.findall(r"^dev-\d{5},[^,]+,(\S+) ", text, flags=re.M)
        assert stamps and set(stamps) == {day}

    failing = set(pd.read_csv(out / "failures.csv")["device_id"])
    counts = readings.groupby("device_id").size()
    grid = CONFIG.days * 96
    for device, n in counts.items():
        if device not in failing:
            assert 0.7 * grid < n <= grid, (device, n)
    assert set(counts.index) == {f"dev-{i:05d}" for i in range(6)}


def test_failing_devices_stop_at_failure_and_degrade_before_it(fleet):
    out, _, readings = fleet
    frame = readings.assign(timestamp=pd.to_datetime(readings["timestamp"]))
    for column in ["inlet_temp_c", "disk_temp_c", "reallocated_sectors", "read_errors"]:
        frame[column] = frame[column].astype(float)
    # Disk temperature above inlet: the weather cancels out, the degradation does not.
    frame["disk_rise"] = frame["disk_temp_c"] - frame["inlet_temp_c"]
    failures = pd.read_csv(out / "failures.csv", parse_dates=["failure_time"])
    start = pd.Timestamp(CONFIG.start)
    columns = ["reallocated_sectors", "read_errors", "disk_rise"]

    def change(group: pd.DataFrame, end: pd.Timestamp) -> pd.Series:
        """Mean over the last day before `end` minus mean over the first 12 hours."""
        last_day = group[group["timestamp"] >= end - pd.Timedelta(days=1)]
        first_hours = group[group["timestamp"] < start + pd.Timedelta(hours=12)]
        return last_day[columns].mean() - first_hours[columns].mean()

    healthy = frame[~frame["device_id"].isin(failures["device_id"])]
    end = start + pd.Timedelta(days=CONFIG.days)
    healthy_change = pd.DataFrame([change(g, end) for _, g in healthy.groupby("device_id")]).max()
    assert healthy_change["disk_rise"] < 0.5
    for device, failure_time in zip(failures["device_id"], failures["failure_time"]):
        group = frame[frame["device_id"] == device]
        assert group["timestamp"].max() < failure_time
        grew = change(group, failure_time)
        assert grew["reallocated_sectors"] > max(20, 3 * healthy_change["reallocated_sectors"]), grew
        assert grew["read_errors"] > max(100, 3 * healthy_change["read_errors"]), grew
        assert grew["disk_rise"] > healthy_change["disk_rise"] + 1.0, grew


def test_same_config_same_files_other_seed_other_files_and_overwrite(spark, fleet, tmp_path):
    plain, _, _ = fleet
    out = tmp_path / "again"
    generate_fleet(spark, replace(CONFIG, seed=6), str(out), num_partitions=2)
    other = _contents(out)
    assert other.keys() == _contents(plain).keys() and other != _contents(plain)
    generate_fleet(spark, CONFIG, str(out), num_partitions=2)  # replaces the previous output entirely
    assert _contents(out) == _contents(plain)
    assert (out / "failures.csv").read_bytes() == (plain / "failures.csv").read_bytes()


def test_gzip_output_is_readable_and_identical(spark, fleet, tmp_path):
    plain, summary, _ = fleet
    out = tmp_path / "gz"
    generate_fleet(spark, replace(CONFIG, gzip=True), str(out), num_partitions=2)
    parts = list((out / "readings").glob("day=*/part-*"))
    assert parts and all(p.name.endswith(".csv.gz") for p in parts)
    assert spark.read.csv(str(out / "readings"), header=True, schema=schema.RAW_TEXT_SCHEMA).count() == summary["rows"]
    assert _contents(out) == _contents(plain)


def _job(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIPELINES_MASTER": "local[2]"}
    return subprocess.run(
        [sys.executable, "-m", "jobs.generate_telemetry", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_job_help_shows_defaults():
    from jobs.generate_telemetry import parser

    text = parser.format_help()
    assert (
        "--out" in text
        and "--partitions" in text
        and "devices=200" in text
        and "default: INFO" in " ".join(text.split())
    )


def test_job_refuses_bad_config_with_exit_code_2(tmp_path):
    result = _job("--out", str(tmp_path / "bad"), "--set", "generate.devices=abc")
    assert result.returncode == 2, result.stderr
    assert "generate.devices" in result.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_job_writes_the_layout(tmp_path):
    out = tmp_path / "fleet"
    result = _job(
        "--out", str(out), "--set", "generate.devices=4", "--set", "generate.days=1", "--set", "generate.gzip=true"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 4 devices" in result.stderr
    assert (out / "_SUCCESS").exists() and (out / "failures.csv").exists()
    assert len((out / "devices.csv").read_text().splitlines()) == 5
    parts = list((out / "readings" / "day=2026-01-01").glob("part-*.csv.gz"))
    rows = sum(len(gzip.decompress(p.read_bytes()).splitlines()) - 1 for p in parts)
    assert 60 < rows <= 4 * 96
