"""Quarantine of bad records: a Parquet folder of the raw fields as text, one `reason` per row and the source file."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

REASON = "reason"
SOURCE_FILE = "source_file"


def write_quarantine(df: DataFrame, uri: str) -> None:
    """Write quarantined records to `uri` as Parquet (a new folder; an existing one is an error)."""
    missing = [c for c in (REASON, SOURCE_FILE) if c not in df.columns]
    if missing:
        raise ValueError(f"quarantine records need the columns {missing}")
    df.write.mode("errorifexists").parquet(uri)


def count_by_reason(spark: SparkSession, uri: str, reasons: Iterable[str] = ()) -> dict[str, int]:
    """Rows per reason in the quarantine at `uri`; every reason of `reasons` is present, with 0 if absent."""
    counts = {r: 0 for r in reasons}
    for row in spark.read.parquet(uri).groupBy(REASON).agg(F.count(F.lit(1)).alias("n")).collect():
        counts[str(row[REASON])] = int(row["n"])
    return counts


FILE_QUARANTINE_SCHEMA = "source_file string, reason string, detail string"


def write_quarantined_files(spark: SparkSession, checks: Iterable, uri: str) -> None:
    """Write the files quarantined whole (`probe.FileCheck`s with a reason) to `uri` as Parquet:
    `source_file`, `reason`, `detail`."""
    rows = [(c.path, c.reason, c.detail) for c in checks if c.reason is not None]
    write_quarantine(spark.createDataFrame(rows, FILE_QUARANTINE_SCHEMA).coalesce(1), uri)
