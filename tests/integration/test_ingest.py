"""Ingest from files: the broken fixture (every reason), gzip, empty and missing input, the job end to end."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pipelines import PROJECT_ROOT
from pipelines.config import IngestConfig, defaults
from pipelines.errors import InputError
from pipelines.io import probe
from pipelines.telemetry.ingest import QUARANTINE_COLUMNS, REASONS, classify, ingest, read_devices, read_raw
from pipelines.telemetry.schema import CLEAN_SCHEMA, RAW_COLUMNS

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "broken_telemetry"
HEADER = ",".join(RAW_COLUMNS)
CONFIG = defaults(IngestConfig)
EXPECTED_REASONS = {
    "malformed_line": 4,
    "missing_field": 2,
    "bad_timestamp": 3,
    "missing_value": 1,
    "non_numeric": 2,
    "not_finite": 4,
    "out_of_bounds": 6,
    "unknown_device": 1,
    "duplicate": 2,
}


def expected_outcome(model: str | None) -> str:
    """The fixture names each record's fate in its `model` field (see its README)."""
    if model == "model":  # a header line repeated inside a file
        return "malformed_line"
    return (model or "").split(",")[0]


def test_fixture_triggers_every_reason_as_labelled(spark):
    raw, files = read_raw(spark, str(FIXTURE / "readings"))
    assert files and all(f.reason is None for f in files)
    checked = classify(raw, config=CONFIG, known_devices=read_devices(spark, str(FIXTURE / "devices.csv")))
    rows = checked.select("model", "reason", "source_file").collect()
    assert len(rows) == raw.count() == 33
    for row in rows:
        assert (row["reason"] or "ok") == expected_outcome(row["model"]), row
        assert row["source_file"].endswith(".csv")
    by_reason = {r: sum(1 for row in rows if row["reason"] == r) for r in REASONS}
    assert by_reason == EXPECTED_REASONS
    assert sum(1 for row in rows if row["reason"] is None) == 8


def test_ingest_writes_clean_quarantine_and_counts(spark, tmp_path):
    out = tmp_path / "out"
    counts = ingest(spark, str(FIXTURE), str(out), CONFIG)
    assert counts == json.loads((out / "counts.json").read_text())
    assert counts["read"] == 33 == counts["clean"] + counts["quarantined"]
    assert counts["quarantined_by_reason"] == EXPECTED_REASONS
    assert (counts["clean"], counts["filled_rows"], counts["resampled_rows"], counts["segments"]) == (8, 5, 13, 4)
    n_files = len(list((FIXTURE / "readings").rglob("*.csv")))
    assert counts["files"]["listed"] == counts["files"]["read"] == n_files and counts["files"]["quarantined"] == 0
    assert (out / "_SUCCESS").exists() and not list(tmp_path.glob("out._tmp-*"))

    quarantine = spark.read.parquet(str(out / "quarantine"))
    assert quarantine.columns == QUARANTINE_COLUMNS
    assert dict(quarantine.groupBy("reason").count().collect()) == EXPECTED_REASONS
    too_many = quarantine.where(F.col("raw_line").endswith(",17")).collect()
    assert len(too_many) == 1 and too_many[0]["reason"] == "malformed_line"
    assert too_many[0]["source_file"].endswith("day=2026-01-01/part-00000.csv")
    # Raw text is kept as read, not parsed.
    assert quarantine.where("power_on_hours = '1001d'").count() == 1

    clean = spark.read.parquet(str(out / "clean"))
    assert clean.schema.simpleString() == CLEAN_SCHEMA.simpleString()
    d1 = clean.where("device_id = 'd-001'").orderBy("timestamp").collect()
    assert [(r["timestamp"].strftime("%H:%M"), r["filled"], r["segment"]) for r in d1] == [
        ("00:00", False, 0),
        ("00:15", False, 0),
        ("00:30", True, 0),
        ("00:45", True, 0),
        ("01:00", True, 0),
        ("01:15", True, 0),
        ("01:30", False, 0),
        ("03:30", False, 1),
    ]
    assert {r["model"] for r in clean.collect()} == {"ok"}


def _gzip_readings(tmp_path: Path) -> Path:
    readings = tmp_path / "readings"
    lines = [
        "d-1,XS,2026-01-01 00:00:00,20,40,30,3000,3000,100,0,0,0,0",
        "d-1,XS,2026-01-01 00:30:00,20,40,30,3000,3000,100.5,0,0,0,0",
        "d-1,XS,2026-01-01 00:45:00,20,40,30,3000,3000",
    ]
    (readings / "day=2026-01-01").mkdir(parents=True)
    with gzip.open(readings / "day=2026-01-01" / "part-00000.csv.gz", "wt") as f:
        f.write("\n".join([HEADER, *lines[:2]]) + "\n")
    (readings / "day=2026-01-02").mkdir()
    (readings / "day=2026-01-02" / "part-00000.csv").write_text("\n".join([HEADER, lines[2]]) + "\n")
    return readings


def test_gzip_and_plain_readings_without_device_list(spark, tmp_path, caplog):
    readings = _gzip_readings(tmp_path)
    with caplog.at_level("WARNING", logger="pipelines.telemetry.ingest"):
        counts = ingest(spark, str(readings / "day=*"), str(tmp_path / "out"), CONFIG)
    assert "unknown_device check is skipped" in caplog.text
    assert (counts["read"], counts["clean"], counts["quarantined"]) == (3, 2, 1)
    assert counts["quarantined_by_reason"]["malformed_line"] == 1
    assert (counts["resampled_rows"], counts["filled_rows"], counts["segments"]) == (3, 1, 1)


@pytest.mark.parametrize("case", ["missing", "no_match", "empty_folder", "header_only"])
def test_missing_or_empty_input_is_an_input_error(spark, tmp_path, case):
    target = {
        "missing": tmp_path / "nope",
        "no_match": tmp_path / "readings" / "*.csv",
        "empty_folder": tmp_path / "readings",
        "header_only": tmp_path / "readings",
    }[case]
    (tmp_path / "readings").mkdir()
    if case == "header_only":
        (tmp_path / "readings" / "part-0.csv").write_text(HEADER + "\n")
    with pytest.raises(InputError, match="not found|no readable telemetry file|no telemetry records"):
        ingest(spark, str(target), str(tmp_path / "out"), CONFIG)
    assert not (tmp_path / "out").exists()


def test_listing_walks_folders_and_globs_skips_hidden_names_and_gives_sizes(spark, tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.CSV").write_bytes(b"12")
    (tmp_path / "in" / "sub" / "b.csv").write_bytes(b"")
    for name in ("_SUCCESS", ".a.CSV.crc", "c.txt"):
        (tmp_path / "in" / name).write_bytes(b"x")
    found = probe.list_files(spark, str(tmp_path / "in"), ["*.csv"])
    assert {path.rsplit("/", 1)[-1]: size for path, size in found} == {"a.CSV": 2, "b.csv": 0}
    assert probe.list_files(spark, f"{tmp_path}/in/*", ["*.csv"]) == found
    with pytest.raises(InputError, match="does not exist"):
        probe.list_files(spark, str(tmp_path / "nope"), ["*.csv"])


def test_columns_are_read_by_name(spark, tmp_path):
    readings = tmp_path / "readings"
    readings.mkdir()
    swapped = HEADER.replace("cpu_temp_c,disk_temp_c", "disk_temp_c,cpu_temp_c")
    (readings / "part-0.csv").write_text(swapped + "\nd-1,XS,2026-01-01 00:00:00,20,30,40,3000,3000,100,0,0,0,0\n")
    counts = ingest(spark, str(readings), str(tmp_path / "out"), CONFIG)
    assert (counts["read"], counts["clean"]) == (1, 1)
    row = spark.read.parquet(str(tmp_path / "out" / "clean")).first()
    assert (row["cpu_temp_c"], row["disk_temp_c"]) == (40.0, 30.0)


def _job(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PIPELINES_MASTER": "local[2]"}
    return subprocess.run(
        [sys.executable, "-m", "jobs.ingest_telemetry", *args, "--set", "ingest.max_fill_gap_readings=4"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_job_end_to_end_and_failed_run_keeps_previous_output(tmp_path):
    out = tmp_path / "out"
    done = _job("--input", str(FIXTURE), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads((out / "counts.json").read_text())
    assert counts["read"] == counts["clean"] + counts["quarantined"] == 33
    assert counts["quarantined_by_reason"] == EXPECTED_REASONS
    assert (out / "_SUCCESS").exists() and (out / "clean" / "_SUCCESS").exists()
    assert "quarantined 25" in done.stderr

    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    failed = _job("--input", str(tmp_path / "missing"), "--out", str(out))
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if "ERROR pipelines.job" in line]
    assert len(errors) == 1 and "input not found" in errors[0], failed.stderr[-3000:]
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert json.loads((out / "counts.json").read_text()) == counts
    shutil.rmtree(out)
