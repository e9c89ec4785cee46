"""Backblaze drive statistics (daily SMART snapshots) into the telemetry model at a daily cadence.

Input: the public daily files, `date,serial_number,model,capacity_bytes,failure,smart_N_normalized,smart_N_raw,...`,
one per day, gzipped or plain, in one folder (or a glob, or nested folders). Their columns change over the years
(attributes are added), so files are grouped by their header and each group is parsed with its own column
positions; an attribute absent from a file's header, or empty in a whole file, is simply missing there. Backblaze's
files never quote fields, so lines are split on commas; a field wrapped in double quotes is unquoted.

Every listed file is read or quarantined whole with one reason (`pipelines.io.probe`: missing, unreadable, empty,
corrupt_compression, not_text, or schema_mismatch when the header lacks `date`, `serial_number` or `failure`).
Every data line of the files read is either clean or quarantined with one reason (`REASONS`, first failing check wins):
- `malformed_line`: a field count different from the header's, or the header repeated inside a file.
- `missing_field`: empty `date` or `serial_number`.
- `bad_date`: `date` is not a valid yyyy-MM-dd.
- `bad_failure`: `failure` is not 0 or 1.
- `non_numeric`: an attribute's value (raw or normalised) is not a plain decimal number (NaN and infinity included).
- `out_of_bounds`: a negative value.
- `duplicate`: the same drive twice on one day; one is kept (a failure flag first, then by file and text).
- `after_failure`: a drive's record dated after the day it was reported failed.
Blank lines and each file's own header line are not records. Empty attribute values are not errors: drive models
report different attributes.

Attributes: `attributes: auto` reads every `smart_<id>_raw` and `smart_<id>_normalized` column that any file's header
has (a list reads those ids only); a column becomes a model feature when at least `min_populated` of the data lines
report it (`FeaturePlan`, recorded in `counts.json`).

Clean readings (`clean/`): one row per drive per day on a midnight-UTC grid. Days missing for a drive are carried
forward when at most `max_fill_gap_days` long (`filled`), a longer gap starts a new `segment`. Columns: `device_id`
(serial number), `model`, `capacity_bytes`, `timestamp`, the attribute columns used (as read, null when not
reported), `filled`, `segment` and the model features (`FeaturePlan.names`), each value carried forward from the
drive's last report: `smart_<id>` log1p(raw), `smart_<id>_norm` (normalised), `smart_<id>_missing` (1 while the drive has
not reported the attribute, whose value is then 0: missing, not zero), for the counters in `change_attributes`
`smart_<id>_growth` (since the day before), `_max` (so far) and `_days_unchanged` (days since the last increase,
`DAYS_UNCHANGED_CAP` when none was seen), `age_years` (power-on hours, attribute 9), `capacity_log2_tb` (0 when
unknown) and the maker's family (`family_<name>`, all 0 for other makers).

Labels: Backblaze sets `failure=1` on a drive's last day D. The failure is placed at D + 1 day 00:00 UTC (the drive
is gone by the next snapshot), so the window ending on D's reading is "fails within the horizon". Drives that
disappear without failing (`disappeared="censor"`) keep only the windows whose horizon ends by their last day:
whether they would have failed later is not known.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.config import BackblazeConfig, PipelineConfig, WindowsConfig
from pipelines.errors import InputError
from pipelines.io import fs, probe
from pipelines.io.probe import FILE_REASONS
from pipelines.io.quarantine import REASON, SOURCE_FILE, count_by_reason, write_quarantine, write_quarantined_files
from pipelines.telemetry import sources
from pipelines.telemetry.schema import MASK_FEATURE, TIMESTAMP_FORMAT, WindowSpec, padded_steps
from pipelines.telemetry.windows import assign_splits, downsample_negatives, fit_normalizer, normalize

log = logging.getLogger(__name__)

DAY_MINUTES = 24 * 60
REQUIRED = ("date", "serial_number", "failure")
OPTIONAL = ("model", "capacity_bytes")
REASONS = (
    "malformed_line",
    "missing_field",
    "bad_date",
    "bad_failure",
    "non_numeric",
    "out_of_bounds",
    "duplicate",
    "after_failure",
)
RAW_LINE = "raw_line"
FILE_PATTERNS = ("*.csv", "*.csv.gz")
CLEAN_DIR, QUARANTINE_DIR, FAILURES_FILE, COUNTS_FILE = "clean", "quarantine", "failures.csv", "counts.json"
QUARANTINE_FILES_DIR = "quarantine_files"

_ATTRIBUTE_RE = re.compile(r"^smart_([0-9]+)_(raw|normalized)$")
DAYS_UNCHANGED_CAP = 30
HOURS_PER_YEAR = 24 * 365.25
FAMILIES = {"seagate": ("ST",), "hgst": ("HGST", "HITACHI"), "wdc": ("WDC", "WD"), "toshiba": ("TOSHIBA",)}
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_NUMBER_RE = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def raw_column(attribute: int) -> str:
    return f"smart_{attribute}_raw"


def normalized_column(attribute: int) -> str:
    return f"smart_{attribute}_normalized"


def feature_column(attribute: int) -> str:
    return f"smart_{attribute}"


@dataclass(frozen=True)
class FeaturePlan:
    """Which attributes become which model features (see the module docstring)."""

    raw: tuple[int, ...]
    normalized: tuple[int, ...]
    missing: tuple[int, ...]
    change: tuple[int, ...]

    def names(self) -> list[str]:
        out = []
        for a in sorted({*self.raw, *self.normalized}):
            out += [feature_column(a)] if a in self.raw else []
            out += [f"smart_{a}_norm"] if a in self.normalized else []
            out += [f"smart_{a}_missing"] if a in self.missing else []  # of the raw value, else the normalised
        for a in self.change:
            out += [f"smart_{a}_growth", f"smart_{a}_max", f"smart_{a}_days_unchanged"]
        out += ["age_years"] if 9 in self.raw else []
        return out + ["capacity_log2_tb", *[f"family_{name}" for name in FAMILIES]]

    def columns(self) -> list[str]:
        """The attribute columns the features are made from."""
        return [raw_column(a) for a in self.raw] + [normalized_column(a) for a in self.normalized]

    @classmethod
    def of(cls, reported: dict[str, int], n_lines: int, config: BackblazeConfig) -> FeaturePlan:
        """The plan for attribute columns reported in `reported[column]` of `n_lines` data lines."""
        used = {c for c, n in reported.items() if n > 0 and n >= config.min_populated * n_lines}
        raw = tuple(sorted(a for c, a, kind in _attributes(used) if kind == "raw"))
        normalized = tuple(sorted(a for c, a, kind in _attributes(used) if kind == "normalized"))
        tracked = {a: raw_column(a) if a in raw else normalized_column(a) for a in {*raw, *normalized}}
        missing = tuple(sorted(a for a, c in tracked.items() if reported[c] < n_lines))
        change = tuple(a for a in config.change_attributes if a in raw)
        return cls(raw, normalized, missing, change)


def _attributes(columns) -> list[tuple[str, int, str]]:
    """(column, attribute id, "raw" | "normalized") of the SMART columns among `columns`."""
    found = [(c, _ATTRIBUTE_RE.match(c)) for c in columns]
    return [(c, int(m.group(1)), m.group(2)) for c, m in found if m]


def feature_names(features: list[str], config: BackblazeConfig) -> list[str]:
    """The model's input features, in order: the ingest's (`counts.json`), then the padding mask when short
    histories are padded."""
    padded = config.min_history_days < config.window_days
    return list(features) + ([MASK_FEATURE] if padded else [])


def check_config(config: BackblazeConfig) -> None:
    if isinstance(config.attributes, str):
        if config.attributes != "auto":
            raise ValueError(f"backblaze.attributes must be 'auto' or a list of ids, not {config.attributes!r}")
    elif not config.attributes:
        raise ValueError("backblaze.attributes must name at least one SMART attribute (or be 'auto')")
    elif len(set(config.attributes)) != len(config.attributes):
        raise ValueError("backblaze.attributes has duplicates")
    if not 0 <= config.min_populated <= 1:
        raise ValueError("backblaze.min_populated must be between 0 and 1")
    if config.max_fill_gap_days < 0:
        raise ValueError("backblaze.max_fill_gap_days must be >= 0")
    if config.disappeared not in ("censor", "negative"):
        raise ValueError(f"backblaze.disappeared must be 'censor' or 'negative', not {config.disappeared!r}")
    if config.window_days < 1 or config.stride_days < 1:
        raise ValueError("backblaze.window_days and backblaze.stride_days must be >= 1")
    if not 1 <= config.min_history_days <= config.window_days:
        raise ValueError("backblaze.min_history_days must be between 1 and backblaze.window_days")


def pipeline_config(config: PipelineConfig, features: list[str]) -> PipelineConfig:
    """`config` with ingest, windows and train set for Backblaze data, so the generic jobs' functions apply;
    `features`: the ingest's (`counts.json`)."""
    bb = config.backblaze
    check_config(bb)
    return dataclasses.replace(
        config,
        ingest=dataclasses.replace(
            config.ingest, interval_minutes=DAY_MINUTES, max_fill_gap_readings=bb.max_fill_gap_days
        ),
        windows=WindowsConfig(
            length=bb.window_days,
            stride=bb.stride_days,
            horizon_days=bb.horizon_days,
            val_fraction=bb.val_fraction,
            test_fraction=bb.test_fraction,
            split_seed=bb.split_seed,
            negatives_per_positive=bb.negatives_per_positive,
            features=feature_names(features, bb),
        ),
        train=bb.train,
    )


# ---------------------------------------------------------------------------------------------------- files


def read_raw(spark: SparkSession, uri: str, *, attributes: str | list[int]) -> tuple[DataFrame | None, dict[str, Any]]:
    """Data lines of every readable daily file at `uri` (a file, a folder searched recursively or a glob) as text
    fields, and what the files and headers said.

    Columns: date, serial_number, model, capacity_bytes, failure, the attribute columns (`smart_<id>_raw` and
    `smart_<id>_normalized` of every id any header has with `attributes="auto"`, else of the listed ids; null
    when a file has no such column), `raw_line`, `_fields` (field count), `_expected` (the header's),
    `_extra_header` (the header repeated inside the file), `source_file`; None when no file is readable.
    The second value: {"checks": [every listed file's `FileCheck`], "header_variants", "columns": [attribute
    columns], "absent": {column: [files without it]}}.
    """
    files = [path for path, _ in probe.list_files(spark, uri, FILE_PATTERNS)]
    if not files:
        raise InputError(f"no Backblaze files (*.csv, *.csv.gz) at {uri}")
    checks = [probe.check_columns(c, REQUIRED) for c in probe.probe(spark, files)]
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for check in checks:
        if check.reason is None:
            groups[tuple(name.lower() for name in check.header)].append(check.path)
    if isinstance(attributes, str):  # "auto" (check_config)
        ids = sorted({a for header in groups for _, a, _ in _attributes(header)})
    else:
        ids = list(attributes)
    wanted = [column for a in ids for column in (raw_column(a), normalized_column(a))]
    info: dict[str, Any] = {"checks": checks, "header_variants": len(groups), "columns": wanted, "absent": {}}
    parts = []
    for header, members in groups.items():
        position = {name: i for i, name in enumerate(header)}
        for name in wanted:
            if name not in position:
                info["absent"].setdefault(name, []).extend(members)
        parts.append(_parse_group(spark, members, header, position, wanted))
    return (reduce(DataFrame.unionByName, parts) if parts else None), info


def _parse_group(spark, files, header, position, wanted) -> DataFrame:
    text = spark.read.text(files).select(F.col("value").alias(RAW_LINE), F.input_file_name().alias(SOURCE_FILE))
    text = text.where(F.trim(RAW_LINE) != "")
    # Split once (a separate projection: Spark does not inline an expensive expression used many times).
    lines = text.select("*", F.split(F.col(RAW_LINE), ",", -1).alias("_f"))

    def field(name: str) -> Column:
        if name not in position:
            return F.lit(None).cast("string")
        value = F.trim(F.get(F.col("_f"), position[name]))
        return F.when(value.startswith('"'), F.regexp_replace(value, r'^"(.*)"$', "$1")).otherwise(value)

    # A data line starts with its date; only other lines are compared with the header.
    normalized = F.regexp_replace(F.regexp_replace(F.lower(F.trim(F.col(RAW_LINE))), '["\ufeff]', ""), r"\s*,\s*", ",")
    is_header = ~F.col(RAW_LINE).rlike("^[0-9]") & (normalized == F.lit(",".join(header)))
    parsed = lines.select(
        *[field(c).alias(c) for c in (*REQUIRED, *OPTIONAL)],
        *[field(c).alias(c) for c in wanted],
        RAW_LINE,
        F.size("_f").alias("_fields"),
        F.lit(len(header)).alias("_expected"),
        is_header.alias("_is_header"),
        SOURCE_FILE,
    )
    # Each file's first line is its header. Identical lines are interchangeable, so one header line per file is
    # dropped and any others are records (malformed). Only the (few) header lines are ranked: no shuffle of the data.
    headers = parsed.where(F.col("_is_header"))
    headers = headers.withColumn("_rank", F.row_number().over(Window.partitionBy(SOURCE_FILE).orderBy(RAW_LINE)))
    extra = headers.where(F.col("_rank") > 1).drop("_rank")
    records = parsed.where(~F.col("_is_header")).unionByName(extra)
    return records.withColumnRenamed("_is_header", "_extra_header")


# ---------------------------------------------------------------------------------------------------- validation


def classify(raw: DataFrame, *, columns: list[str]) -> DataFrame:
    """`raw` (from `read_raw`) with parsed `_device`, `_model`, `_capacity`, `_day` (timestamp), `_failure`,
    `_v_<column>` for the attribute `columns` and `reason` (null for clean records)."""

    def empty(c: str) -> Column:
        return F.col(c).isNull() | (F.col(c) == "")

    value = {c: F.expr(f"try_cast(`{c}` AS DOUBLE)") for c in columns}
    parsed = raw.select(
        "*",
        F.when(~empty("serial_number"), F.col("serial_number")).alias("_device"),
        F.when(~empty("model"), F.col("model")).alias("_model"),
        F.expr("try_cast(capacity_bytes AS DOUBLE)").alias("_capacity"),
        F.when(
            F.col("date").rlike(_DATE_RE),
            F.try_to_timestamp(F.concat(F.col("date"), F.lit(" 00:00:00Z")), F.lit(TIMESTAMP_FORMAT + "X")),
        ).alias("_day"),
        F.when(F.col("failure").isin("0", "1"), F.col("failure").cast("int")).alias("_failure"),
        *[v.alias(f"_v_{c}") for c, v in value.items()],
    )
    non_numeric = [
        ~empty(c) & (~F.col(c).rlike(_NUMBER_RE) | F.isnan(f"_v_{c}") | (F.abs(F.col(f"_v_{c}")) == float("inf")))
        for c in columns
    ]
    negative = [F.col(f"_v_{c}") < 0 for c in columns]
    reason = (
        F.when((F.col("_fields") != F.col("_expected")) | F.col("_extra_header"), "malformed_line")
        .when(empty("date") | empty("serial_number"), "missing_field")
        .when(F.col("_day").isNull(), "bad_date")
        .when(F.col("_failure").isNull(), "bad_failure")
        .when(_any(non_numeric), "non_numeric")
        .when(_any(negative), "out_of_bounds")
    )
    # The whole line is kept for records rejected here; the ones found duplicate or after a failure below keep their
    # parsed fields only, so the (long) lines of valid records do not travel through the shuffle.
    checked = (
        parsed.withColumn(REASON, reason)
        .withColumn("_valid", F.col(REASON).isNull())
        .withColumn(RAW_LINE, F.when(~F.col("_valid"), F.col(RAW_LINE)))
    )

    # Both windows are partitioned by the drive first, so Spark shuffles the records once. A duplicate never
    # hides a failure flag (flags sort first), so the first failure can be taken before removing duplicates.
    first_failure = F.min(F.when(F.col("_valid") & (F.col("_failure") == 1), F.col("_day"))).over(
        Window.partitionBy("_device")
    )
    checked = checked.withColumn("_first_failure", first_failure)
    same_day = Window.partitionBy("_device", "_day", "_valid").orderBy(
        F.col("_failure").desc(), SOURCE_FILE, *[F.col(c) for c in (*OPTIONAL, *columns)]
    )
    duplicate = F.col("_valid") & (F.row_number().over(same_day) > 1)
    after = F.col("_valid") & (F.col("_day") > F.col("_first_failure"))
    reason = F.when(duplicate, F.lit("duplicate")).when(after, F.lit("after_failure")).otherwise(F.col(REASON))
    return checked.withColumn(REASON, reason).drop("_valid", "_first_failure")


def split(checked: DataFrame, *, columns: list[str]) -> tuple[DataFrame, DataFrame]:
    """(clean records, quarantined records) from `classify`.

    Clean: device_id, model, capacity_bytes, timestamp, failure, the attribute `columns` as doubles.
    Quarantined: the text fields as read, `raw_line`, `reason`, `source_file`.
    """
    text_cols = [*REQUIRED, *OPTIONAL, *columns]
    clean = checked.where(F.col(REASON).isNull()).select(
        F.col("_device").alias("device_id"),
        F.col("_model").alias("model"),
        F.when(F.col("_capacity") > 0, F.col("_capacity")).alias("capacity_bytes"),
        F.col("_day").alias("timestamp"),
        F.col("_failure").alias("failure"),
        *[F.col(f"_v_{c}").alias(c) for c in columns],
    )
    quarantine = checked.where(F.col(REASON).isNotNull()).select(*text_cols, RAW_LINE, REASON, SOURCE_FILE)
    return clean, quarantine


def _any(conditions: list[Column]) -> Column:
    out = F.lit(False)
    for c in conditions:
        out = out | F.coalesce(c, F.lit(False))
    return out


# ---------------------------------------------------------------------------------------------------- daily grid


def failures_of(clean: DataFrame) -> DataFrame:
    """`device_id, failure_time`: the day after each drive's (first) failure flag, midnight UTC."""
    return (
        clean.where(F.col("failure") == 1)
        .groupBy("device_id")
        .agg(F.min("timestamp").alias("_day"))
        .select("device_id", (F.col("_day") + F.expr("INTERVAL 1 DAY")).alias("failure_time"))
    )


def to_daily_grid(clean: DataFrame, *, plan: FeaturePlan, max_fill_gap_days: int) -> DataFrame:
    """One row per drive per day of each segment, with the model features of `plan`; see the module docstring."""
    day = 24 * 3600
    columns = plan.columns()
    slot = F.floor(F.col("timestamp").cast("long") / F.lit(day)) * F.lit(day)
    readings = clean.select("device_id", "model", "capacity_bytes", *columns, slot.alias("_slot"))
    by_time = Window.partitionBy("device_id").orderBy("_slot")
    so_far = by_time.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    missing_before = (F.col("_slot") - F.lag("_slot").over(by_time)) / F.lit(day) - 1
    missing_after = ((F.lead("_slot").over(by_time) - F.col("_slot")) / F.lit(day) - 1).cast("int")
    fill = F.when(missing_after.between(1, max_fill_gap_days), missing_after).otherwise(F.lit(0))

    def carried(column: str) -> Column:
        return F.last(column, ignorenulls=True).over(so_far)

    logged = {a: F.log1p(carried(raw_column(a))) for a in plan.raw}  # negative values are quarantined
    carried_values = readings.select(
        "*",
        F.when(missing_before > max_fill_gap_days, 1).otherwise(0).alias("_new_segment"),
        fill.alias("_fill"),
        *[logged[a].alias(f"_log_{a}") for a in plan.raw],
        *[carried(normalized_column(a)).alias(f"_norm_{a}") for a in plan.normalized],
    )
    increase = {a: F.col(f"_log_{a}") > F.lag(f"_log_{a}").over(by_time) for a in plan.change}
    changes = carried_values.select(
        "*",
        F.sum("_new_segment").over(so_far).cast("int").alias("segment"),
        *[(F.col(f"_log_{a}") - F.lag(f"_log_{a}").over(by_time)).alias(f"_growth_{a}") for a in plan.change],
        *[F.max(f"_log_{a}").over(so_far).alias(f"_max_{a}") for a in plan.change],
        *[F.max(F.when(increase[a], F.col("_slot"))).over(so_far).alias(f"_increased_{a}") for a in plan.change],
    )
    exploded = changes.withColumn("_k", F.explode(F.sequence(F.lit(0), F.col("_fill"))))

    def days_unchanged(a: int) -> Column:
        days = (F.col("_slot") - F.col(f"_increased_{a}")) / F.lit(day) + F.col("_k")
        return F.least(F.coalesce(days, F.lit(DAYS_UNCHANGED_CAP)), F.lit(DAYS_UNCHANGED_CAP))

    first_column = {a: f"_log_{a}" if a in plan.raw else f"_norm_{a}" for a in plan.missing}
    model = F.upper(F.trim(F.coalesce(F.col("model"), F.lit(""))))
    features: dict[str, Column] = {}
    for a in sorted({*plan.raw, *plan.normalized}):
        if a in plan.raw:
            features[feature_column(a)] = F.coalesce(F.col(f"_log_{a}"), F.lit(0.0))
        if a in plan.normalized:
            features[f"smart_{a}_norm"] = F.coalesce(F.col(f"_norm_{a}"), F.lit(0.0))
        if a in plan.missing:
            features[f"smart_{a}_missing"] = F.col(first_column[a]).isNull().cast("double")
    for a in plan.change:
        filled = F.col("_k") > 0
        features[f"smart_{a}_growth"] = F.when(filled, 0.0).otherwise(F.coalesce(F.col(f"_growth_{a}"), F.lit(0.0)))
        features[f"smart_{a}_max"] = F.coalesce(F.col(f"_max_{a}"), F.lit(0.0))
        features[f"smart_{a}_days_unchanged"] = days_unchanged(a)
    if 9 in plan.raw:
        features["age_years"] = F.coalesce(F.expm1(F.col("_log_9")) / F.lit(HOURS_PER_YEAR), F.lit(0.0))
    features["capacity_log2_tb"] = F.coalesce(F.log2(F.col("capacity_bytes") / F.lit(1e12)), F.lit(0.0))
    for name, prefixes in FAMILIES.items():
        features[f"family_{name}"] = _any([model.startswith(p) for p in prefixes]).cast("double")
    assert list(features) == plan.names()
    return exploded.select(
        "device_id",
        "model",
        "capacity_bytes",
        F.timestamp_seconds(F.col("_slot") + F.col("_k") * F.lit(day)).alias("timestamp"),
        *columns,
        *[value.cast("double").alias(name) for name, value in features.items()],
        (F.col("_k") > 0).alias("filled"),
        "segment",
    )


# ---------------------------------------------------------------------------------------------------- the job


def ingest_backblaze(spark: SparkSession, input_uri: str, out_uri: str, config: BackblazeConfig) -> dict[str, Any]:
    """Read, validate, quarantine and grid Backblaze files into `out_uri`; return the counts.

    Writes, committed atomically with `_SUCCESS`: `clean/` (Parquet, daily grid), `quarantine/` (Parquet),
    `quarantine_files/` (Parquet: `source_file`, `reason`, `detail` of the files quarantined whole), `failures.csv`
    (device_id,failure_time, as the generator writes it) and `counts.json`: read = clean + quarantined (checked), by
    reason, files (listed = read + quarantined, checked; by reason) and header variants, per attribute column the files where it is
    absent or empty and the share of clean lines reporting it, the features (`FeaturePlan`), drives, failed and
    disappeared drives, grid rows, filled rows and segments.
    """
    check_config(config)
    raw, info = read_raw(spark, input_uri, attributes=config.attributes)
    files = info["checks"]
    probe.log_quarantined(files)
    if raw is None:
        raise InputError(f"no readable Backblaze file at {input_uri}: {probe.describe(files)}")
    columns = info["columns"]
    checked = classify(raw, columns=columns).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        valid = F.col(REASON).isNull()
        per_file = (
            checked.groupBy(SOURCE_FILE)
            .agg(
                F.count(F.lit(1)).alias("lines"),
                F.count(F.when(valid, 1)).alias("valid"),
                *[F.count(F.when(F.col(c) != "", 1)).alias(f"n_{c}") for c in columns],
                *[F.count(F.when(valid & (F.col(c) != ""), 1)).alias(f"valid_{c}") for c in columns],
            )
            .collect()
        )
        n_read = sum(int(r["lines"]) for r in per_file)
        if n_read == 0:
            raise InputError(f"the Backblaze files at {input_uri} hold no data lines: {probe.describe(files)}")
        n_valid = sum(int(r["valid"]) for r in per_file)
        reported = {c: sum(int(r[f"valid_{c}"]) for r in per_file) for c in columns}
        plan = FeaturePlan.of(reported, n_valid, config)
        if not plan.raw and not plan.normalized:
            raise InputError(
                f"no SMART attribute column at {input_uri} is reported in {config.min_populated:.0%} of the valid "
                f"lines (backblaze.attributes: {config.attributes})"
            )
        clean, quarantine = split(checked, columns=plan.columns())
        grid = to_daily_grid(clean, plan=plan, max_fill_gap_days=config.max_fill_gap_days)
        failures = failures_of(clean).orderBy("device_id").collect()
        with fs.atomic_output(spark, out_uri) as tmp:
            write_quarantine(quarantine, f"{tmp}/{QUARANTINE_DIR}")
            write_quarantined_files(spark, files, f"{tmp}/{QUARANTINE_FILES_DIR}")
            grid.write.parquet(f"{tmp}/{CLEAN_DIR}")
            lines = ["device_id,failure_time"] + [
                f"{r['device_id']},{r['failure_time'].strftime('%Y-%m-%d %H:%M:%S')}" for r in failures
            ]
            fs.write_text(spark, f"{tmp}/{FAILURES_FILE}", "\n".join(lines) + "\n")
            counts = _counts(spark, tmp, n_read, info, per_file, reported, n_failed=len(failures))
            counts.update(features=plan.names(), feature_plan={k: list(v) for k, v in dataclasses.asdict(plan).items()})
            fs.write_json(spark, f"{tmp}/{COUNTS_FILE}", counts)
    finally:
        checked.unpersist()
    log.info(
        "Backblaze: read %d = clean %d + quarantined %d %s; %d drives, %d failed, %d disappeared; written to %s",
        counts["read"],
        counts["clean"],
        counts["quarantined"],
        {k: v for k, v in counts["quarantined_by_reason"].items() if v},
        counts["devices"],
        counts["failed_devices"],
        counts["disappeared_devices"],
        out_uri,
    )
    return counts


def _counts(
    spark, out: str, n_read: int, info: dict, per_file, reported: dict[str, int], *, n_failed: int
) -> dict[str, Any]:
    by_reason = count_by_reason(spark, f"{out}/{QUARANTINE_DIR}", REASONS)
    grid = spark.read.parquet(f"{out}/{CLEAN_DIR}")
    row = grid.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.col("filled"), 1)).alias("filled"),
        F.countDistinct("device_id", "segment").alias("segments"),
        F.countDistinct("device_id").alias("devices"),
        F.min("timestamp").alias("first"),
        F.max("timestamp").alias("last"),
    ).first()
    rows, filled = int(row["rows"]), int(row["filled"])
    failed = spark.read.csv(f"{out}/{FAILURES_FILE}", header=True).select("device_id")
    last_seen = grid.groupBy("device_id").agg(F.max("timestamp").alias("last_seen"))
    disappeared = (
        last_seen.where(F.col("last_seen") < F.lit(row["last"])).join(failed, "device_id", "left_anti").count()
        if row["last"] is not None
        else 0
    )
    columns = info["columns"]
    empty_in = dict.fromkeys(columns, 0)
    for c in columns:
        absent = {probe.file_key(f) for f in info["absent"].get(c, [])}
        empty_in[c] = sum(1 for r in per_file if r[f"n_{c}"] == 0 and probe.file_key(r[SOURCE_FILE]) not in absent)
    n_valid = max(sum(int(r["valid"]) for r in per_file), 1)
    counts = {
        "read": n_read,
        "clean": rows - filled,
        "quarantined": sum(by_reason.values()),
        "quarantined_by_reason": by_reason,
        "files": probe.file_counts(
            info["checks"], count_by_reason(spark, f"{out}/{QUARANTINE_FILES_DIR}", FILE_REASONS)
        ),
        "header_variants": info["header_variants"],
        "attributes": {
            c: {
                "files_absent": len(info["absent"].get(c, [])),
                "files_empty": empty_in[c],
                "reported": round(reported[c] / n_valid, 4),
            }
            for c in columns
        },
        "grid_rows": rows,
        "filled_rows": filled,
        "segments": int(row["segments"]),
        "devices": int(row["devices"]),
        "failed_devices": n_failed,
        "disappeared_devices": int(disappeared),
        "first_day": row["first"].strftime("%Y-%m-%d") if row["first"] else None,
        "last_day": row["last"].strftime("%Y-%m-%d") if row["last"] else None,
    }
    if counts["read"] != counts["clean"] + counts["quarantined"]:
        raise RuntimeError(
            f"counts do not add up: read {counts['read']} != clean {counts['clean']} + quarantined {counts['quarantined']}"
        )
    return counts


# ---------------------------------------------------------------------------------------------------- windows


def censor_disappeared(
    windows: DataFrame, readings: DataFrame, failures: DataFrame, *, horizon_days: float
) -> DataFrame:
    """Drop windows of drives that vanish without failing when their horizon reaches past the drive's last day."""
    last_seen = readings.groupBy("device_id").agg(F.max("timestamp").alias("_last_seen"))
    vanished = last_seen.join(failures.select("device_id"), "device_id", "left_anti")
    horizon = F.expr(f"INTERVAL {int(round(horizon_days * 86400))} SECONDS")
    joined = windows.join(F.broadcast(vanished), "device_id", "left")
    keep = F.col("_last_seen").isNull() | (F.col("window_end") + horizon <= F.col("_last_seen"))
    return joined.where(keep).drop("_last_seen")


def sliding_windows(
    readings: DataFrame, *, features: list[str], length: int, min_history: int | None = None
) -> DataFrame:
    """Every run of `length` consecutive grid readings of a device segment, as `device_id, segment, window_end,
    features` (row-major float array, length x n_features), computed with SQL window frames on the executors.
    With `min_history` < length, the first readings of a segment make windows too, from the `min_history`-th on,
    left-padded with zero steps (`padded_steps`)."""
    frame = Window.partitionBy("device_id", "segment").orderBy("timestamp").rowsBetween(-(length - 1), 0)
    steps = readings.select(
        "device_id", "segment", "timestamp", F.array(*[F.col(c).cast("float") for c in features]).alias("_step")
    )
    return (
        steps.withColumn("_steps", F.collect_list("_step").over(frame))
        .where(F.size("_steps") >= (min_history or length))
        .select(
            "device_id",
            "segment",
            F.col("timestamp").alias("window_end"),
            padded_steps(F.col("_steps"), length=length, n_features=len(features)).alias("features"),
        )
        .where(F.forall("features", lambda x: x.isNotNull() & ~F.isnan(x) & (F.abs(x) != float("inf"))))
    )


def make_windows(
    readings: DataFrame,
    failures: DataFrame,
    *,
    features: list[str],
    length: int,
    stride: int,
    horizon_days: float,
    interval_minutes: int,
    observed_until,
    min_history: int | None = None,
) -> DataFrame:
    """`pipelines.telemetry.windows.make_windows` (same schema, alignment, labels and right-censoring) without
    Python: a fleet of tens of thousands of drives with days of history each makes as many tiny pandas groups,
    which dominate the cost there. Here everything is SQL window frames and array functions. `min_history`: see
    `sliding_windows`."""
    step_seconds = interval_minutes * 60 * stride
    horizon = F.expr(f"INTERVAL {int(round(horizon_days * 86400))} SECONDS")
    first_failure = failures.groupBy("device_id").agg(F.min("failure_time").alias("_failure"))
    windows = sliding_windows(readings, features=features, length=length, min_history=min_history).where(
        F.col("window_end").cast("long") % F.lit(step_seconds) == 0
    )
    labelled = windows.join(first_failure, "device_id", "left").select(
        "device_id",
        "window_end",
        "features",
        F.when(
            F.col("_failure").isNotNull(),
            ((F.col("window_end") < F.col("_failure")) & (F.col("_failure") <= F.col("window_end") + horizon)).cast(
                "int"
            ),
        )
        .otherwise(F.lit(0))
        .alias("label"),
        F.col("_failure"),
    )
    if observed_until is not None:
        labelled = labelled.where(
            F.col("_failure").isNotNull() | (F.col("window_end") + horizon <= F.lit(observed_until))
        )
    return labelled.drop("_failure")


def build_windows(
    readings: DataFrame, failures: DataFrame, *, config: PipelineConfig, features: list[str]
) -> tuple[DataFrame, dict]:
    """Split drives, normalise with training statistics, window, label, censor and balance (see the docstring).

    The steps of `pipelines.telemetry.windows.build_window_dataset` with the SQL `make_windows` above and the
    per-drive censoring. `config` is the full config; the Backblaze settings come from `config.backblaze`;
    `features`: the ingest's (`counts.json`).
    """
    derived = pipeline_config(config, features)
    wc = derived.windows
    splits = assign_splits(
        readings.select("device_id").distinct(),
        failures,
        val_fraction=wc.val_fraction,
        test_fraction=wc.test_fraction,
        seed=wc.split_seed,
    ).select("device_id", "split")
    measured = [f for f in wc.features if f != MASK_FEATURE]
    stats = fit_normalizer(
        readings.join(F.broadcast(splits.where(F.col("split") == "train")), "device_id"), features=measured
    )
    observed_until = readings.agg(F.max("timestamp")).collect()[0][0]
    padded = MASK_FEATURE in wc.features
    if padded:  # 1 on every reading, as it is (mean 0, sd 1); the padding's zero steps carry 0
        readings = readings.withColumn(MASK_FEATURE, F.lit(1.0))
        stats = {k: [*stats[k], v] for k, v in (("features", MASK_FEATURE), ("mean", 0.0), ("std", 1.0))}
    windows = make_windows(
        normalize(readings, stats),
        failures,
        features=wc.features,
        length=wc.length,
        stride=wc.stride,
        horizon_days=wc.horizon_days,
        interval_minutes=derived.ingest.interval_minutes,
        observed_until=observed_until,
        min_history=config.backblaze.min_history_days if padded else None,
    )
    if config.backblaze.disappeared == "censor":
        windows = censor_disappeared(windows, readings, failures, horizon_days=wc.horizon_days)
    windows = windows.join(F.broadcast(splits), "device_id")
    balanced = downsample_negatives(
        windows, negatives_per_positive=wc.negatives_per_positive, seed=wc.split_seed, split="train"
    )
    return balanced, stats


def ingested_features(spark: SparkSession, ingest_root: str) -> list[str]:
    """The features an ingest made (its `counts.json`)."""
    return list(fs.read_json(spark, f"{ingest_root}/{COUNTS_FILE}")["features"])


def write_windows(spark: SparkSession, ingest_root: str, windows_root: str, config: PipelineConfig) -> dict:
    """Windows of an ingested Backblaze folder, written like build_windows does; returns the counts."""
    readings = sources.read_parquet(spark, f"{ingest_root}/{CLEAN_DIR}", "clean readings")
    failures = sources.read_failures(spark, f"{ingest_root}/{FAILURES_FILE}")
    features = ingested_features(spark, ingest_root)
    windows, stats = build_windows(readings, failures, config=config, features=features)
    spec = WindowSpec.of(pipeline_config(config, features))
    if MASK_FEATURE in spec.features:
        spec = dataclasses.replace(spec, min_history=config.backblaze.min_history_days)
    return sources.write_windows(spark, windows, stats, windows_root, spec=spec)
