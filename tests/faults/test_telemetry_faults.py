"""Fault injection into the telemetry CSV ingest: one batch holding every broken file of `TABLE` beside good ones,
ingested once; each row says what must happen to its file, and the counts must add up for rows and for files."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import ingest_telemetry
from pipelines.cli import run
from pipelines.config import IngestConfig, defaults
from pipelines.io import probe
from pipelines.telemetry.ingest import ingest
from pipelines.telemetry.schema import RAW_COLUMNS
from tests.faults.files import UNREADABLE_SKIP, Fault, corrupt, deleted_after_listing, gz, text, write_batch

CONFIG = defaults(IngestConfig)
HEADER = ",".join(RAW_COLUMNS)


def lines(device: str, n: int, *, first: int = 0) -> list[str]:
    """`n` valid readings of `device`, 15 minutes apart."""
    start = dt.datetime(2026, 1, 1)
    return [
        f"{device},XS,{start + dt.timedelta(minutes=15 * i):%Y-%m-%d %H:%M:%S},20,40,30,3000,3000,{100 + i},0,0,0,0"
        for i in range(first, first + n)
    ]


def reordered(device: str) -> bytes:
    header = list(reversed(RAW_COLUMNS))
    return text(",".join(header), *[",".join(reversed(line.split(","))) for line in lines(device, 2)])


def extra_column(device: str) -> bytes:
    return text(HEADER + ",rack", *[line + ",r7" for line in lines(device, 2)])


def without(column: str, device: str) -> bytes:
    i = RAW_COLUMNS.index(column)
    drop = lambda row: ",".join(f for j, f in enumerate(row.split(",")) if j != i)  # noqa: E731
    return text(drop(HEADER), *[drop(line) for line in lines(device, 2)])


def late_damage(device: str) -> bytes:
    """A plain file whose first HEAD_BYTES are fine and whose last line is binary garbage."""
    good = lines(device, 96 * 12)
    assert len(text(HEADER, *good)) > probe.HEAD_BYTES
    return text(HEADER, *good) + b"\xfe\xff\x00\x01" * 8 + b"\n"


TABLE = [
    Fault("good.csv", lambda d: text(HEADER, *lines(d, 3)), None, 3),
    Fault("good.csv.gz", lambda d: gz(text(HEADER, *lines(d, 3))), None, 3),
    Fault("truncated.csv.gz", lambda d: gz(text(HEADER, *lines(d, 50)))[:-40], "corrupt_compression"),
    Fault("corrupt.csv.gz", lambda d: corrupt(gz(text(HEADER, *lines(d, 50)))), "corrupt_compression"),
    Fault("plain_named.csv.gz", lambda d: text(HEADER, *lines(d, 2)), "corrupt_compression"),
    Fault("garbage.csv", lambda d: random.Random(7).randbytes(5000), "not_text"),
    Fault("nul_bytes.csv", lambda d: text(HEADER, *lines(d, 2)).replace(b",XS,", b",X\x00S,"), "not_text"),
    Fault("utf16.csv", lambda d: text(HEADER, *lines(d, 2)).decode().encode("utf-16"), "not_text"),
    Fault("latin1.csv", lambda d: text(HEADER, *lines(d, 2)).replace(b",XS,", ",Gerät,".encode("latin-1")), "not_text"),
    Fault("empty.csv", lambda d: b"", "empty"),
    Fault("empty.csv.gz", lambda d: gz(b""), "empty"),
    Fault("header_only.csv", lambda d: text(HEADER), None, 0),
    Fault("bom_crlf.csv", lambda d: b"\xef\xbb\xbf" + text(HEADER, *lines(d, 2)).replace(b"\n", b"\r\n"), None, 2),
    Fault("reordered.csv", reordered, None, 2),
    Fault("extra_column.csv", extra_column, None, 2),
    Fault("no_model.csv", lambda d: without("model", d), None, 2),
    Fault("no_timestamp.csv", lambda d: without("timestamp", d), "schema_mismatch"),
    Fault(
        "repeated_column.csv",
        lambda d: text(HEADER + ",device_id", *[x + ",a" for x in lines(d, 2)]),
        "schema_mismatch",
    ),
    Fault("header_repeated.csv", lambda d: text(HEADER, *lines(d, 2), HEADER, *lines(d, 2, first=2)), None, 5, 1),
    Fault(
        "long_line.csv",
        lambda d: text(HEADER, *lines(d, 2), f"{d},XS,2026-01-01 01:00:00," + "x" * 1_000_000),
        None,
        3,
        1,
    ),
    Fault("late_damage.csv", late_damage, None, 96 * 12 + 1, 1),
    Fault("vanishing.csv", lambda d: text(HEADER, *lines(d, 2)), "missing"),
    Fault(
        "unreadable.csv",
        lambda d: text(HEADER, *lines(d, 2)),
        "unreadable",
        skip=UNREADABLE_SKIP,
    ),
]
VANISHING = "vanishing.csv"
BATCH = [f for f in TABLE if not f.skip]


@dataclass(frozen=True)
class Outcome:
    counts: dict
    out: Path
    files: dict  # file name -> (reason, detail) in quarantine_files/
    bad_rows: dict  # file name -> records in quarantine/


@pytest.fixture(scope="module")
def batch(spark, tmp_path_factory) -> Outcome:
    """The batch ingested once; a file is deleted between the listing and the probe."""
    root = tmp_path_factory.mktemp("telemetry_faults")
    readings = root / "readings"
    write_batch(readings / "day=2026-01-01", BATCH)
    with deleted_after_listing(readings / "day=2026-01-01" / VANISHING):
        counts = ingest(spark, str(readings), str(root / "out"), CONFIG)
    out = root / "out"
    files = {_name(r[0]): (r[1], r[2]) for r in spark.read.parquet(str(out / "quarantine_files")).collect()}
    per_file = spark.read.parquet(str(out / "quarantine")).groupBy("source_file").count().collect()
    return Outcome(counts, out, files, {_name(r[0]): r[1] for r in per_file})


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


@pytest.mark.parametrize("fault", TABLE, ids=[f.name for f in TABLE])
def test_each_file_is_read_or_quarantined_with_its_reason(batch, fault):
    if fault.skip:
        pytest.skip(fault.skip)
    assert batch.files.get(fault.name, (None, ""))[0] == fault.reason, batch.files.get(fault.name)
    assert batch.bad_rows.get(fault.name, 0) == fault.bad_rows


def test_counts_add_up_for_rows_and_for_files(batch):
    counts = batch.counts
    assert counts == json.loads((batch.out / "counts.json").read_text())
    files = counts["files"]
    assert files["quarantined_by_reason"] == {r: sum(1 for f in BATCH if f.reason == r) for r in probe.FILE_REASONS}
    assert files["listed"] == len(BATCH) == files["read"] + files["quarantined"]
    assert files["extra_columns"] == {"rack": 1}
    rows = sum(f.rows for f in BATCH if f.reason is None)
    assert counts["read"] == rows == counts["clean"] + counts["quarantined"]
    assert counts["quarantined"] == sum(f.bad_rows for f in BATCH)


def test_rows_of_a_reordered_file_and_of_a_file_without_the_optional_column_are_clean(spark, batch):
    clean = spark.read.parquet(str(batch.out / "clean")).where(~F.col("filled")).collect()
    for name in ("reordered.csv", "no_model.csv", "bom_crlf.csv"):
        device = next(f for f in BATCH if f.name == name).id(BATCH)
        rows = sorted((r for r in clean if r["device_id"] == device), key=lambda r: r["timestamp"])
        assert [r["power_on_hours"] for r in rows] == [100.0, 101.0], name
        assert {r["model"] for r in rows} == ({None} if name == "no_model.csv" else {"XS"})


DEBRIS = [
    "good.csv",
    "truncated.csv.gz",
    "garbage.csv",
    "reordered.csv",
    "bom_crlf.csv",
    "header_only.csv",
    "empty.csv",
]


def test_the_typical_debris_batch_completes_and_nothing_readable_exits_1_in_one_line(tmp_path, capfd, caplog):
    readings = write_batch(tmp_path / "debris", [f for f in TABLE if f.name in DEBRIS])
    out = tmp_path / "out"
    args = ["--input", str(readings), "--out", str(out)]
    assert run(ingest_telemetry.main, ingest_telemetry.build_parser(), args) == 0
    counts = json.loads((out / "counts.json").read_text())
    assert counts["read"] == 3 + 2 + 2 == counts["clean"] + counts["quarantined"]
    assert counts["files"]["listed"] == 7 == counts["files"]["read"] + counts["files"]["quarantined"]
    assert {k: v for k, v in counts["files"]["quarantined_by_reason"].items() if v} == {
        "corrupt_compression": 1,
        "not_text": 1,
        "empty": 1,
    }

    broken = tmp_path / "broken"
    write_batch(broken, [f for f in TABLE if f.name in ("truncated.csv.gz", "garbage.csv", "empty.csv")])
    capfd.readouterr()
    caplog.clear()
    assert run(ingest_telemetry.main, ingest_telemetry.build_parser(), ["--input", str(broken), "--out", str(out)]) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and not errors[0].exc_info
    message = errors[0].getMessage()
    assert str(broken) in message and "3 file(s) listed, 0 read, 3 quarantined" in message
    console = capfd.readouterr().err
    assert "Traceback" not in console and "\tat " not in console and "Py4JJavaError" not in console
    assert json.loads((out / "counts.json").read_text()) == counts  # the previous output is whole
