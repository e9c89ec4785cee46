"""Fault injection into the Backblaze ingest: one batch of daily files holding every broken file of `TABLE` beside
good ones, ingested once; each row says what must happen to its file, and the counts must add up."""

from __future__ import annotations

import json
import random

import pytest

from pipelines.config import BackblazeConfig, defaults
from pipelines.io import probe
from pipelines.telemetry import backblaze as bb
from tests.faults.files import UNREADABLE_SKIP, Fault, corrupt, deleted_after_listing, gz, text, write_batch

CONFIG = defaults(BackblazeConfig, attributes=[9], max_fill_gap_days=1)
COLUMNS = ["date", "serial_number", "model", "capacity_bytes", "failure", "smart_9_raw"]
HEADER = ",".join(COLUMNS)


def lines(drive: str, n: int) -> list[str]:
    """`n` drives' records of 2021-01-01, valid."""
    return [f"2021-01-01,{drive}-{i},M1,4000,0,{1000 + i}" for i in range(n)]


def reordered(drive: str) -> bytes:
    return text(",".join(reversed(COLUMNS)), *[",".join(reversed(line.split(","))) for line in lines(drive, 2)])


TABLE = [
    Fault("good.csv", lambda d: text(HEADER, *lines(d, 3)), None, 3),
    Fault("good.csv.gz", lambda d: gz(text(HEADER, *lines(d, 3))), None, 3),
    Fault("truncated.csv.gz", lambda d: gz(text(HEADER, *lines(d, 50)))[:-40], "corrupt_compression"),
    Fault("corrupt.csv.gz", lambda d: corrupt(gz(text(HEADER, *lines(d, 50)))), "corrupt_compression"),
    Fault("garbage.csv", lambda d: random.Random(7).randbytes(5000), "not_text"),
    Fault("nul_bytes.csv", lambda d: text(HEADER, *lines(d, 2)).replace(b",M1,", b",M\x001,"), "not_text"),
    Fault("utf16.csv", lambda d: text(HEADER, *lines(d, 2)).decode().encode("utf-16"), "not_text"),
    Fault("empty.csv", lambda d: b"", "empty"),
    Fault("empty.csv.gz", lambda d: gz(b""), "empty"),
    Fault("header_only.csv", lambda d: text(HEADER), None, 0),
    Fault("bom_crlf.csv", lambda d: b"\xef\xbb\xbf" + text(HEADER, *lines(d, 2)).replace(b"\n", b"\r\n"), None, 2),
    Fault("reordered.csv", reordered, None, 2),
    Fault("no_serial.csv", lambda d: text("date,serial,failure", "2021-01-01,Z,0"), "schema_mismatch"),
    Fault("header_repeated.csv", lambda d: text(HEADER, *lines(d, 2), HEADER), None, 3, 1),
    Fault(
        "long_line.csv",
        lambda d: text(HEADER, *lines(d, 1), f"2021-01-01,{d}-x,M1,4000,0," + "9" * 1_000_000 + ",1"),
        None,
        2,
        1,
    ),
    Fault("vanishing.csv", lambda d: text(HEADER, *lines(d, 2)), "missing"),
    Fault("unreadable.csv", lambda d: text(HEADER, *lines(d, 2)), "unreadable", skip=UNREADABLE_SKIP),
]
BATCH = [f for f in TABLE if not f.skip]


@pytest.fixture(scope="module")
def batch(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("backblaze_faults")
    folder = write_batch(root / "raw", BATCH)
    with deleted_after_listing(folder / "vanishing.csv"):
        counts = bb.ingest_backblaze(spark, str(folder), str(root / "out"), CONFIG)
    out = root / "out"
    files = {r[0].rsplit("/", 1)[-1]: r[1] for r in spark.read.parquet(str(out / "quarantine_files")).collect()}
    per_file = spark.read.parquet(str(out / "quarantine")).groupBy("source_file").count().collect()
    bad_rows = {r[0].rsplit("/", 1)[-1]: r[1] for r in per_file}
    return counts, out, files, bad_rows


@pytest.mark.parametrize("fault", TABLE, ids=[f.name for f in TABLE])
def test_each_file_is_read_or_quarantined_with_its_reason(batch, fault):
    if fault.skip:
        pytest.skip(fault.skip)
    _, _, files, bad_rows = batch
    assert files.get(fault.name) == fault.reason
    assert bad_rows.get(fault.name, 0) == fault.bad_rows


def test_counts_add_up_for_rows_and_for_files(batch):
    counts, out, _, _ = batch
    assert counts == json.loads((out / "counts.json").read_text())
    files = counts["files"]
    assert files["quarantined_by_reason"] == {r: sum(1 for f in BATCH if f.reason == r) for r in probe.FILE_REASONS}
    assert files["listed"] == len(BATCH) == files["read"] + files["quarantined"]
    assert counts["read"] == sum(f.rows for f in BATCH) == counts["clean"] + counts["quarantined"]
    assert counts["quarantined"] == sum(f.bad_rows for f in BATCH)
