"""Telemetry ingest: read raw CSVs as text, validate every field with column expressions, quarantine what fails.

Files are checked first (`pipelines.io.probe`): a file that cannot be read as CSV text with the required columns is
quarantined whole with its reason; the columns of the others are taken by name from their headers.

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
import time
from collections import defaultdict
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from pipelines.config import IngestConfig
from pipelines.errors import InputError
from pipelines.io import fs, probe
from pipelines.io.probe import FILE_REASONS, FileCheck
from pipelines.io.quarantine import REASON, SOURCE_FILE, count_by_reason, write_quarantine, write_quarantined_files
from pipelines.telemetry.resample import fill_gaps, grid_slot
from pipelines.telemetry.schema import (
    CLEAN_SCHEMA,
    DEVICES_SCHEMA,
    FANS,
    RAW_COLUMNS,
    SENSORS,
    TEMPERATURES,
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
FILE_PATTERNS = ("*.csv*",)  # .csv and compressed .csv.gz, .csv.bz2 (read transparently)
REQUIRED_COLUMNS = [c for c in RAW_COLUMNS if c != "model"]

_TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
# A plain decimal number, or NaN or +-infinity spelled out (refused later as not finite).
_NUMERIC_RE = r"^[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|(?i:nan|inf|infinity))$"


class CountMismatchError(RuntimeError):
    """Records were lost or invented: read != clean + quarantined."""


# ---------------------------------------------------------------------------------------------------- reading


def read_raw(spark: SparkSession, uri: str) -> tuple[DataFrame | None, list[FileCheck]]:
    """Readings of every readable CSV file at `uri` (folder, partitioned folder or glob) as text, and the check of
    every file listed (`pipelines.io.probe`; None instead of a DataFrame when no file is readable).

    Columns: `RAW_COLUMNS` (strings), `_corrupt_record` (the whole line when its field count is wrong) and
    `source_file`. Columns are taken by name from each file's header: in any order, `model` may be missing (null),
    other columns are left out; a file without one of `REQUIRED_COLUMNS` is quarantined (`schema_mismatch`).
    A `day=` partition column is dropped.
    """
    checks = [
        probe.check_columns(c, REQUIRED_COLUMNS)
        for c in probe.probe(spark, [path for path, _ in probe.list_files(spark, uri, FILE_PATTERNS)])
    ]
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for check in checks:
        if check.reason is None:
            groups[check.header].append(check.path)
    parts = [_read_group(spark, header, paths) for header, paths in groups.items()]
    return (reduce(DataFrame.unionByName, parts) if parts else None), checks


def _read_group(spark: SparkSession, header: tuple[str, ...], paths: list[str]) -> DataFrame:
    """Files sharing one header, their columns taken by name."""
    schema = StructType(
        [*[StructField(name, StringType(), True) for name in header], StructField(CORRUPT_RECORD, StringType(), True)]
    )
    df = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("columnPruning", False)  # a line's field count is only checked when every column is parsed
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .csv(paths)
    )
    position = {name.lower(): name for name in header}

    def column(c: str) -> Column:
        if c not in position:
            return F.lit(None).cast("string").alias(c)
        return F.col("`" + position[c].replace("`", "``") + "`").alias(c)

    return df.select(*[column(c) for c in RAW_COLUMNS], CORRUPT_RECORD, F.input_file_name().alias(SOURCE_FILE))


def extra_columns(checks: list[FileCheck]) -> dict[str, int]:
    """Columns of the files read that are not `RAW_COLUMNS`, with the number of files having each (left out)."""
    extra: dict[str, int] = defaultdict(int)
    for check in checks:
        if check.reason is None:
            for name in check.header:
                if name.lower() not in RAW_COLUMNS:
                    extra[name.lower()] += 1
    return dict(sorted(extra.items()))


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
    hadoop, path = fs.hadoop(spark, uri)
    found = hadoop.globStatus(path)
    return found is not None and len(found) > 0


# ---------------------------------------------------------------------------------------------------- validation


def classify(raw: DataFrame, *, config: IngestConfig, known_devices: DataFrame | None = None) -> DataFrame:
    """`raw` with parsed columns (`_device`, `_ts`, `_v_<sensor>`, `_slot`) and `reason` (null for clean records).

    `raw` has `RAW_COLUMNS` as text; `_corrupt_record` and `source_file` are optional. `_slot` is the grid
    point (`resample.grid_slot`) of records that passed every check but the duplicate one, else null.
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
        parsed = parsed.join(F.broadcast(known), parsed["_device"] == known["_known_device"], "left")
        unknown = F.col("_known_device").isNull()
    else:
        unknown = F.lit(False)

    # The duplicate ranking below needs the records by device. The checks run after that shuffle, so that
    # parsing and checking are two code-generated stages, each closer to what the JVM compiles (one stage
    # holding both exceeds HotSpot's 8 kB method limit and runs interpreted).
    shuffled = parsed.repartition("_device")
    trimmed = shuffled.select(*shuffled.columns, *[F.trim(F.col(c)).alias(_text(c)) for c in RAW_COLUMNS])
    # A header line inside a file: every column equals its name (a column the file lacks is null).
    parsed = trimmed.select(
        *shuffled.columns,
        (F.col(CORRUPT_RECORD).isNotNull() | _all([F.coalesce(_t(c) == c, F.lit(True)) for c in RAW_COLUMNS])).alias(
            "_malformed"
        ),
        (_empty("device_id") | _empty("timestamp")).alias("_missing_field"),
        *[_sensor_check(c, config).alias(f"_check_{c}") for c in SENSORS],
    )

    # The first failing check wins: the sensor checks are ranked, the worst sensor decides.
    sensors = F.least(*[F.col(f"_check_{c}") for c in SENSORS])
    reason = (
        F.when(F.col("_malformed"), "malformed_line")
        .when(F.col("_missing_field"), "missing_field")
        .when(F.col("_ts").isNull(), "bad_timestamp")
        .when(sensors == _MISSING_VALUE, "missing_value")
        .when(sensors == _NON_NUMERIC, "non_numeric")
        .when(sensors == _NOT_FINITE, "not_finite")
        .when(sensors == _OUT_OF_BOUNDS, "out_of_bounds")
        .when(unknown, "unknown_device")
    )
    checked = parsed.select(
        *RAW_COLUMNS,
        CORRUPT_RECORD,
        SOURCE_FILE,
        "_device",
        "_model",
        "_ts",
        *[f"_v_{c}" for c in SENSORS],
        reason.alias(REASON),
    )

    # Duplicates among the otherwise valid readings: one per device and grid point.
    sec = F.col("_ts").cast("long")
    checked = checked.withColumn(
        "_slot", F.when(F.col(REASON).isNull(), grid_slot(F.col("_ts"), config.interval_minutes))
    )
    same_slot = Window.partitionBy("_device", "_slot").orderBy(
        F.abs(sec - F.col("_slot")), "_ts", SOURCE_FILE, *RAW_COLUMNS
    )
    rank = F.row_number().over(same_slot)
    return checked.withColumn(
        REASON, F.when(F.col(REASON).isNull() & (rank > 1), F.lit("duplicate")).otherwise(F.col(REASON))
    )


# Sensor checks, in the order they are applied; _OK ranks after all of them.
_MISSING_VALUE, _NON_NUMERIC, _NOT_FINITE, _OUT_OF_BOUNDS, _OK = 1, 2, 3, 4, 9


def _text(c: str) -> str:
    return f"_t_{c}"


def _t(c: str) -> Column:
    return F.col(_text(c))


def _empty(c: str) -> Column:
    return _t(c).isNull() | (_t(c) == "")


def sensor_bounds(sensor: str, config: IngestConfig) -> tuple[float, float]:
    """The range [low, high] of valid readings of `sensor`: temperatures and fan speeds from the config,
    counters and the fault code non-negative."""
    if sensor in TEMPERATURES:
        return config.temperature_min_c, config.temperature_max_c
    if sensor in FANS:
        return 0.0, config.fan_rpm_max
    return 0.0, float("inf")


def _sensor_check(c: str, config: IngestConfig) -> Column:
    """The first check that sensor `c` fails (`_MISSING_VALUE` ... `_OUT_OF_BOUNDS`), else `_OK`."""
    value = F.col(f"_v_{c}")
    low, high = sensor_bounds(c, config)
    out_of_bounds = (value < low) | (value > high)
    # NaN sorts above infinity in Spark, so |v| < inf is false for NaN and +-inf (and null for null).
    finite = F.coalesce(F.abs(value) < F.lit(float("inf")), F.lit(False))
    return (
        F.when(_empty(c), _MISSING_VALUE)
        .when(~_t(c).rlike(_NUMERIC_RE), _NON_NUMERIC)
        .when(~finite, _NOT_FINITE)
        .when(out_of_bounds, _OUT_OF_BOUNDS)
        .otherwise(_OK)
    )


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
      quarantine_files/  Parquet, `source_file`, `reason`, `detail`: the files quarantined whole (`pipelines.io.probe`)
      counts.json   read, clean, quarantined, quarantined_by_reason (every reason, 0 included),
                    resampled_rows, filled_rows, segments (device segments), devices, and
                    files: listed, read, quarantined, quarantined_by_reason, extra_columns (name: files, left out)
    `clean` and `quarantined` are counted from what was written; read = clean + quarantined is checked
    (`CountMismatchError` otherwise), so is listed = read + quarantined for files, and resampled_rows = clean +
    filled_rows. Missing input, or no readable file or record, raises `InputError`.
    """
    _check_config(config)
    readings_uri, devices_uri = resolve_input(spark, input_uri, devices_uri)
    raw, files = read_raw(spark, readings_uri)
    probe.log_quarantined(files)
    if raw is None:
        raise InputError(f"no readable telemetry file in {readings_uri}: {probe.describe(files)}")
    if devices_uri is None:
        known = None
        log.warning("no device list (devices.csv or --devices): the unknown_device check is skipped")
    else:
        known = read_devices(spark, devices_uri)
        n_devices = known.where(F.col("device_id") != "").select("device_id").distinct().count()
        if n_devices == 0:
            raise InputError(f"device list {devices_uri} has no devices")
        log.info("device list %s: %d devices", devices_uri, n_devices)

    checked = classify(raw, config=config, known_devices=known)
    # Clean records need only their parsed values from here on; quarantined ones keep their raw text.
    as_read = [*RAW_COLUMNS, CORRUPT_RECORD, SOURCE_FILE]
    cached = checked.select(
        *[F.when(F.col(REASON).isNotNull(), F.col(c)).alias(c) for c in as_read],
        *[c for c in checked.columns if c not in as_read],
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        started = time.perf_counter()
        n_read = cached.count()
        if n_read == 0:
            raise InputError(f"no telemetry records in {readings_uri} (header lines excluded): {probe.describe(files)}")
        _progress("read, parse, validate and find duplicates", n_read, started, f"records from {readings_uri}")
        clean = cached.where(F.col(REASON).isNull()).select(
            F.col("_device").alias("device_id"),
            F.col("_model").alias("model"),
            "_slot",
            *[F.col(f"_v_{c}").alias(c) for c in SENSORS],
        )
        _, quarantine = split(cached)
        resampled = fill_gaps(
            clean, interval_minutes=config.interval_minutes, max_fill_gap_readings=config.max_fill_gap_readings
        )
        with fs.atomic_output(spark, out_uri) as tmp:
            started = time.perf_counter()
            write_quarantine(quarantine, f"{tmp}/quarantine")
            by_reason = count_by_reason(spark, f"{tmp}/quarantine", REASONS)
            _progress("write quarantine", sum(by_reason.values()), started, "records")
            started = time.perf_counter()
            resampled.write.parquet(f"{tmp}/clean")
            counts = _counts(spark, tmp, n_read, by_reason)
            write_quarantined_files(spark, files, f"{tmp}/quarantine_files")
            counts["files"] = probe.file_counts(files, count_by_reason(spark, f"{tmp}/quarantine_files", FILE_REASONS))
            counts["files"]["extra_columns"] = extra_columns(files)
            _progress("resample and write clean", counts["resampled_rows"], started, "rows on the grid")
            fs.write_json(spark, f"{tmp}/counts.json", counts)
    finally:
        cached.unpersist()
    log.info(
        "clean %d, quarantined %d %s; %d rows on the grid (%d filled) in %d segments, written to %s",
        counts["clean"],
        counts["quarantined"],
        {r: n for r, n in counts["quarantined_by_reason"].items() if n},
        counts["resampled_rows"],
        counts["filled_rows"],
        counts["segments"],
        out_uri,
    )
    return counts


def _progress(stage: str, rows: int, started: float, what: str) -> None:
    seconds = time.perf_counter() - started
    log.info("%s: %d %s in %.1f s (%.0f rows/s)", stage, rows, what, seconds, rows / max(seconds, 1e-9))


def _counts(spark: SparkSession, out: str, n_read: int, by_reason: dict[str, int]) -> dict[str, Any]:
    """Counts from what was written, checked: read = clean + quarantined."""
    row = (
        spark.read.schema(CLEAN_SCHEMA)
        .parquet(f"{out}/clean")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(F.col("filled"), 1)).alias("filled"),
            F.countDistinct("device_id", "segment").alias("segments"),
            F.countDistinct("device_id").alias("devices"),
        )
        .collect()[0]
    )
    rows, filled = int(row["rows"]), int(row["filled"])
    counts: dict[str, Any] = {
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
