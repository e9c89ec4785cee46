"""Telemetry ingest: read raw CSVs as text, validate every field with column expressions, quarantine what fails.

Every record read ends up either clean or quarantined with exactly one `reason`; the first failing check wins,
in this order (`REASONS`):

- `malformed_line`: wrong number of fields or an unparsable line (Spark's corrupt-record column is set), or a
  header line repeated inside a file (concatenated files). The first line of each file is its header, not a record.
- `missing_field`: `device_id` or `timestamp` empty.
- `bad_timestamp`: not a valid "yyyy-MM-dd HH:mm:ss" (UTC) date and time.
- `missing_value`: a sensor value is empty. The whole reading is quarantined, so clean readings are complete;
  the hole it leaves is a one-reading gap that resampling fills like any other short gap.
- `non_numeric`: a sensor value is not a plain decimal number (Java's "1d", "0x10" are refused).
- `not_finite`: NaN or +-infinity (also numbers too large for a double).
- `out_of_bounds`: temperatures outside [temperature_min_c, temperature_max_c], fan speeds outside [0, fan_rpm_max],
  negative counters or fault code.
- `unknown_device`: device id not in the device list (skipped when there is no device list).
- `duplicate`: another valid reading of the same device falls on the same grid point (the same timestamp after
  rounding to the nearest `interval_minutes`). One is kept: the closest to the grid point, then the earliest, then
  the first by source file and raw text, so the choice does not depend on partitioning.

Fields are trimmed before parsing; an empty `model` becomes null (it is informational and never quarantines).
"""
from __future__ import annotations

import logging
import operator
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from pipelines.cli import InputError
from pipelines.config import IngestConfig
from pipelines.io import fs
from pipelines.io.quarantine import REASON, SOURCE_FILE, count_by_reason, write_quarantine
from pipelines.telemetry.resample import resample
from pipelines.telemetry.schema import (
    CLEAN_SCHEMA, COUNTERS, DEVICES_SCHEMA, FANS, RAW_COLUMNS, RAW_TEXT_SCHEMA, SENSORS, TEMPERATURES,
    TIMESTAMP_FORMAT,
)

log = logging.getLogger(__name__)

REASONS = (
    "malformed_line",
    "missing_field",
    "bad_timestamp",
    "missing_value",
    "non_numeric",
    "not_finite",
    "out_of_bounds",
    "unknown_device",
    "duplicate",
)
CORRUPT_RECORD = "_corrupt_record"
RAW_LINE = "raw_line"
QUARANTINE_COLUMNS = [*RAW_COLUMNS, RAW_LINE, REASON, SOURCE_FILE]
FILE_FILTER = "*.csv*"  # .csv and compressed .csv.gz (read transparently)

_TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
_NUMBER_RE = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_NOT_FINITE_RE = r"(?i)^[+-]?(nan|inf|infinity)$"


class CountMismatchError(RuntimeError):
    """Records were lost or invented: read != clean + quarantined."""


# ---------------------------------------------------------------------------------------------------- reading


def read_raw(spark: SparkSession, uri: str) -> DataFrame:
    """Readings at `uri` (folder, partitioned folder or glob of CSV files) as text.

    Columns: `RAW_COLUMNS` (strings), `_corrupt_record` (the whole line when its field count is wrong) and
    `source_file`. A `day=` partition column is dropped. Headers are checked against `RAW_COLUMNS`.
    """
    schema = StructType([*RAW_TEXT_SCHEMA.fields, StructField(CORRUPT_RECORD, StringType(), True)])
    df = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", False)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .option("pathGlobFilter", FILE_FILTER)
        .csv(uri)
    )
    return df.select(*RAW_COLUMNS, CORRUPT_RECORD, F.input_file_name().alias(SOURCE_FILE))


def read_devices(spark: SparkSession, uri: str) -> DataFrame:
    """The known fleet (`device_id`, `model`) from a devices.csv with a header row."""
    df = spark.read.schema(DEVICES_SCHEMA).option("header", True).csv(uri)
    return df.select(F.trim("device_id").alias("device_id"), F.trim("model").alias("model"))


def resolve_input(spark: SparkSession, input_uri: str, devices_uri: str | None = None) -> tuple[str, str | None]:
    """(readings URI, devices URI or None) for a telemetry root or for the readings themselves.

    A root holds `readings/` and usually `devices.csv`; anything else is taken as the readings (folder or glob).
    """
    uri = input_uri.rstrip("/")
    if not _matches(spark, uri):
        raise InputError(f"input not found: {input_uri}")
    readings = uri
    if not _is_glob(uri) and fs.exists(spark, f"{uri}/readings"):
        readings = f"{uri}/readings"
        if devices_uri is None and fs.exists(spark, f"{uri}/devices.csv"):
            devices_uri = f"{uri}/devices.csv"
    if devices_uri is not None and not _matches(spark, devices_uri):
        raise InputError(f"device list not found: {devices_uri}")
    return readings, devices_uri


def _is_glob(uri: str) -> bool:
    return any(ch in uri for ch in "*?[{")


def _matches(spark: SparkSession, uri: str) -> bool:
    """Whether a path exists or a glob matches something."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    found = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).globStatus(path)
    return found is not None and len(found) > 0


# ---------------------------------------------------------------------------------------------------- validation


def classify(raw: DataFrame, *, config: IngestConfig, known_devices: DataFrame | None = None) -> DataFrame:
    """`raw` with parsed columns (`_device`, `_ts`, `_v_<sensor>`) and `reason` (null for clean records).

    `raw` has `RAW_COLUMNS` as text; `_corrupt_record` and `source_file` are optional.
    """
    _check_config(config)
    if CORRUPT_RECORD not in raw.columns:
        raw = raw.withColumn(CORRUPT_RECORD, F.lit(None).cast("string"))
    if SOURCE_FILE not in raw.columns:
        raw = raw.withColumn(SOURCE_FILE, F.lit(None).cast("string"))
    text = {c: F.trim(F.col(c)) for c in RAW_COLUMNS}
    parsed = raw.select(
        *RAW_COLUMNS,
        CORRUPT_RECORD,
        SOURCE_FILE,
        F.when(text["device_id"] != "", text["device_id"]).alias("_device"),
        F.when(text["model"] != "", text["model"]).alias("_model"),
        F.when(
            text["timestamp"].rlike(_TIMESTAMP_RE),
            F.try_to_timestamp(F.concat(text["timestamp"], F.lit("Z")), F.lit(TIMESTAMP_FORMAT + "X")),
        ).alias("_ts"),
        *[F.expr(f"try_cast(trim(`{c}`) AS DOUBLE)").alias(f"_v_{c}") for c in SENSORS],
    )
    if known_devices is not None:
        known = (
            known_devices.select(F.trim("device_id").alias("_known_device"))
            .where(F.col("_known_device") != "")
            .distinct()
        )
        parsed = parsed.join(known, parsed["_device"] == known["_known_device"], "left")
        unknown = F.col("_known_device").isNull()
    else:
        unknown = F.lit(False)

    def empty(c: str) -> Column:
        return text[c].isNull() | (text[c] == "")

    def value(c: str) -> Column:
        return F.col(f"_v_{c}")

    def is_number(c: str) -> Column:
        return text[c].rlike(_NUMBER_RE)

    is_header = _all([text[c] == c for c in RAW_COLUMNS])
    not_finite = [
        text[c].rlike(_NOT_FINITE_RE) | F.isnan(value(c)) | (F.abs(value(c)) == float("inf")) for c in SENSORS
    ]
    out_of_bounds = (
        [(value(c) < config.temperature_min_c) | (value(c) > config.temperature_max_c) for c in TEMPERATURES]
        + [(value(c) < 0) | (value(c) > config.fan_rpm_max) for c in FANS]
        + [value(c) < 0 for c in [*COUNTERS, "fault_code"]]
    )
    reason = (
        F.when(F.col(CORRUPT_RECORD).isNotNull() | is_header, "malformed_line")
        .when(empty("device_id") | empty("timestamp"), "missing_field")
        .when(F.col("_ts").isNull(), "bad_timestamp")
        .when(_any([empty(c) for c in SENSORS]), "missing_value")
        .when(_any([~(is_number(c) | text[c].rlike(_NOT_FINITE_RE)) for c in SENSORS]), "non_numeric")
        .when(_any(not_finite), "not_finite")
        .when(_any(out_of_bounds), "out_of_bounds")
        .when(unknown, "unknown_device")
    )
    checked = parsed.withColumn(REASON, reason)

    # Duplicates among the otherwise valid readings: one per device and grid point.
    step = config.interval_minutes * 60
    sec = F.col("_ts").cast("long")
    slot = F.floor((sec + F.lit(step // 2)) / F.lit(step)) * F.lit(step)
    checked = checked.withColumn("_slot", F.when(F.col(REASON).isNull(), slot))
    same_slot = Window.partitionBy("_device", "_slot").orderBy(
        F.abs(sec - F.col("_slot")), "_ts", SOURCE_FILE, *RAW_COLUMNS
    )
    rank = F.row_number().over(same_slot)
    return checked.withColumn(
        REASON, F.when(F.col(REASON).isNull() & (rank > 1), F.lit("duplicate")).otherwise(F.col(REASON))
    ).drop("_slot", "_known_device")


def split(checked: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(clean readings, quarantined records) from the output of `classify`.

    Clean: `device_id, model, timestamp` and the sensors as doubles (the first columns of `CLEAN_SCHEMA`).
    Quarantined: `QUARANTINE_COLUMNS`, the raw fields as read, `raw_line` for lines with a wrong field count.
    """
    clean = checked.where(F.col(REASON).isNull()).select(
        F.col("_device").alias("device_id"),
        F.col("_model").alias("model"),
        F.col("_ts").alias("timestamp"),
        *[F.col(f"_v_{c}").alias(c) for c in SENSORS],
    )
    quarantine = checked.where(F.col(REASON).isNotNull()).select(
        *RAW_COLUMNS, F.col(CORRUPT_RECORD).alias(RAW_LINE), REASON, SOURCE_FILE
    )
    return clean, quarantine


def parse_and_validate(
    raw_df: DataFrame, *, config: IngestConfig, known_devices: DataFrame | None = None
) -> tuple[DataFrame, DataFrame]:
    """(clean, quarantine) from raw text records; see the module docstring for the checks."""
    return split(classify(raw_df, config=config, known_devices=known_devices))


def _check_config(config: IngestConfig) -> None:
    if config.interval_minutes < 1:
        raise ValueError(f"ingest.interval_minutes must be >= 1, got {config.interval_minutes}")
    if config.max_fill_gap_readings < 0:
        raise ValueError(f"ingest.max_fill_gap_readings must be >= 0, got {config.max_fill_gap_readings}")
    if config.temperature_min_c > config.temperature_max_c:
        raise ValueError("ingest.temperature_min_c is above ingest.temperature_max_c")


def _any(conditions: list[Column]) -> Column:
    return reduce(operator.or_, conditions)


def _all(conditions: list[Column]) -> Column:
    return reduce(operator.and_, conditions)


# ---------------------------------------------------------------------------------------------------- the job


def ingest(
    spark: SparkSession,
    input_uri: str,
    out_uri: str,
    config: IngestConfig,
    devices_uri: str | None = None,
) -> dict[str, Any]:
    """Read, validate, quarantine and resample telemetry into `out_uri`; return the counts.

    `input_uri` is a telemetry root (`readings/`, `devices.csv`) or the readings themselves (folder or glob).
    Writes, committed atomically with `_SUCCESS`:
      clean/        Parquet, `CLEAN_SCHEMA`: the clean readings resampled onto the grid
      quarantine/   Parquet, `QUARANTINE_COLUMNS`: raw fields as text, `raw_line`, `reason`, `source_file`
      counts.json   read, clean, quarantined, quarantined_by_reason (every reason, 0 included),
                    resampled_rows, filled_rows, segments (device segments), devices
    `clean` and `quarantined` are counted from what was written; read = clean + quarantined is checked
    (`CountMismatchError` otherwise) and resampled_rows = clean + filled_rows. Missing or empty input raises
    `InputError`.
    """
    _check_config(config)
    readings_uri, devices_uri = resolve_input(spark, input_uri, devices_uri)
    raw = read_raw(spark, readings_uri)
    n_read = raw.count()
    if n_read == 0:
        raise InputError(f"no telemetry records in {readings_uri} (files matching {FILE_FILTER}, header excluded)")
    log.info("read %d records from %s", n_read, readings_uri)
    if devices_uri is None:
        known = None
        log.warning("no device list (devices.csv or --devices): the unknown_device check is skipped")
    else:
        known = read_devices(spark, devices_uri)
        n_devices = known.where(F.col("device_id") != "").select("device_id").distinct().count()
        if n_devices == 0:
            raise InputError(f"device list {devices_uri} has no devices")
        log.info("device list %s: %d devices", devices_uri, n_devices)

    checked = classify(raw, config=config, known_devices=known).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        clean, quarantine = split(checked)
        resampled = resample(
            clean, interval_minutes=config.interval_minutes, max_fill_gap_readings=config.max_fill_gap_readings
        )
        with fs.atomic_output(spark, out_uri) as tmp:
            write_quarantine(quarantine, f"{tmp}/quarantine")
            resampled.write.parquet(f"{tmp}/clean")
            counts = _counts(spark, tmp, n_read)
            fs.write_json(spark, f"{tmp}/counts.json", counts)
    except Exception as e:
        message = _header_mismatch(e)
        if message:
            raise InputError(message) from None
        raise
    finally:
        checked.unpersist()
    log.info(
        "clean %d, quarantined %d %s; %d rows on the grid (%d filled) in %d segments, written to %s",
        counts["clean"], counts["quarantined"],
        {r: n for r, n in counts["quarantined_by_reason"].items() if n}, counts["resampled_rows"],
        counts["filled_rows"], counts["segments"], out_uri,
    )
    return counts


def _counts(spark: SparkSession, out: str, n_read: int) -> dict[str, Any]:
    """Counts from what was written, checked: read = clean + quarantined."""
    by_reason = count_by_reason(spark, f"{out}/quarantine", REASONS)
    row = (
        spark.read.schema(CLEAN_SCHEMA).parquet(f"{out}/clean")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col("filled"), 1)).alias("filled"),
            F.countDistinct("device_id", "segment").alias("segments"),
            F.countDistinct("device_id").alias("devices"),
        )
        .first()
    )
    rows, filled = int(row["rows"]), int(row["filled"])
    counts = {
        "read": n_read,
        "clean": rows - filled,
        "quarantined": sum(by_reason.values()),
        "quarantined_by_reason": by_reason,
        "resampled_rows": rows,
        "filled_rows": filled,
        "segments": int(row["segments"]),
        "devices": int(row["devices"]),
    }
    if counts["read"] != counts["clean"] + counts["quarantined"]:
        raise CountMismatchError(
            f"counts do not add up: read {counts['read']} != clean {counts['clean']}"
            f" + quarantined {counts['quarantined']}"
        )
    return counts


def _header_mismatch(exc: BaseException) -> str | None:
    """The gist of Spark's failure on a file whose header differs from `RAW_COLUMNS`, else None."""
    text = str(exc)
    start = text.find("CSV header does not conform to the schema")
    if start < 0:
        return None
    lines = [line.strip() for line in text[start:].splitlines()[:5]]
    return " ".join(line for line in lines if line and not line.startswith("at "))
