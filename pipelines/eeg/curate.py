"""Report curation on Spark: structured, de-identified findings and text per report, and extraction metrics.

Extraction and de-identification run on the executors (`mapPartitions` over report rows); the key travels in
the task closure and is never logged. Only aggregate counts reach the driver.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from pipelines.eeg import deid, evaluate
from pipelines.eeg.extract import extract_findings, extract_identifiers, timeline
from pipelines.eeg.schema import FINDINGS_SCHEMA, TEXT_FIELD

log = logging.getLogger(__name__)

_CURATED = StructType(
    [StructField(f.name, f.dataType, True) for f in FINDINGS_SCHEMA.fields]
    + [
        TEXT_FIELD,
        StructField("path", StringType(), True),
        StructField("file_name", StringType(), True),
        StructField("file_size", IntegerType(), True),
        StructField("reason", StringType(), True),
        StructField("detail", StringType(), True),
    ]
)


def curate_row(report_id: str, text: str, key: bytes, max_shift_days: int) -> tuple:
    """Findings and de-identified text of one report, in `FINDINGS_SCHEMA` order plus `text_deid`.

    The monitoring days are read from the de-identified text, so their dates are shifted and their events'
    descriptions scrubbed like the text.
    """
    ids = extract_identifiers(text)
    found = extract_findings(text)
    identity = deid.patient_identity(ids, report_id)
    days = deid.shift_days(key, identity, max_shift_days)
    age, capped = deid.cap_age(found.age)
    dates = sorted(deid.shift(date.fromisoformat(d), days).isoformat() for d in found.study_dates)
    text_deid = deid.deidentify_text(text, ids, days)
    monitoring_days = [
        (d["start"], d["end"], [(e["time"], e["kind"], e["description"]) for e in d["events"]])
        for d in timeline(text_deid)[0]
    ]
    identifiers = tuple(x for x in (*ids.names, *ids.mrn_forms, ids.mrn or "", *ids.physicians, *ids.phones) if x)
    return (
        deid.safe_file_id(report_id, key, identifiers=identifiers),
        deid.keyed_hash(key, "report", report_id),
        deid.keyed_hash(key, "patient", identity),
        found.sections,
        age,
        capped,
        found.sex,
        dates,
        found.study_type,
        found.duration_minutes,
        found.impression,
        found.epileptiform,
        found.slowing,
        found.slowing_location,
        found.seizure_present,
        found.seizure_count,
        found.seizure_types,
        [(e["time"], e["kind"]) for e in found.events],
        monitoring_days,
        found.medications,
        found.heart_rate,
        text_deid,
    )


def curate_reports(reports: DataFrame, *, key: bytes, max_shift_days: int) -> DataFrame:
    """`_CURATED` rows: findings + `text_deid` for each report, or a quarantine reason if extraction failed.

    A report the extractor cannot handle is quarantined as `extraction_failed` with the exception's type only.
    """
    n_findings = len(FINDINGS_SCHEMA.fields) + 1

    def run(rows: Iterable) -> Iterator[tuple]:
        for row in rows:
            try:
                yield curate_row(row["report_id"], row["text"], key, max_shift_days) + (None,) * 5
            except Exception as e:  # noqa: BLE001 - one bad report must not stop the others
                yield (None,) * n_findings + (
                    row["path"],
                    row["report_id"],
                    None,
                    "extraction_failed",
                    type(e).__name__,
                )

    return reports.sparkSession.createDataFrame(
        reports.select("report_id", "path", "text").rdd.mapPartitions(run), _CURATED
    )


def findings_frame(curated: DataFrame) -> DataFrame:
    return curated.where(F.col("reason").isNull()).select(*FINDINGS_SCHEMA.fieldNames())


def deid_text_frame(curated: DataFrame) -> DataFrame:
    return curated.where(F.col("reason").isNull()).select("report_key", "patient_key", "text_deid")


def failed_frame(curated: DataFrame) -> DataFrame:
    return curated.where(F.col("reason").isNotNull()).select(
        F.col("path").alias("source_file"), "file_name", F.col("file_size").cast("long"), "reason", "detail"
    )


def protect_quarantine(quarantine: DataFrame, key: bytes) -> DataFrame:
    """A quarantine fit for a research output: file names and paths replaced by keyed hashes.

    A quarantined file could not be read, so its name cannot be vetted for identifiers; operators holding the
    key find it again with `deid.keyed_hash(key, "file", name)` over a listing of the input.
    """
    schema = quarantine.schema

    def hide(rows: Iterable) -> Iterator[tuple]:
        for row in rows:
            values = row.asDict()
            values["source_file"] = "h_" + deid.keyed_hash(key, "file", row["source_file"])
            values["file_name"] = "h_" + deid.keyed_hash(key, "file", row["file_name"])
            yield tuple(values[f.name] for f in schema.fields)

    return quarantine.sparkSession.createDataFrame(quarantine.rdd.mapPartitions(hide), schema)


def read_truth(spark: SparkSession, uri: str) -> DataFrame:
    """`report_id, truth` (the JSON line) from the generator's `truth/reports.jsonl`."""
    lines = spark.read.text(uri)
    return lines.select(F.get_json_object("value", "$.report_id").alias("report_id"), F.col("value").alias("truth"))


def extraction_metrics(reports: DataFrame, truth: DataFrame) -> dict:
    """Per-field precision/recall of the rules on `reports` (raw text) against the truth; only counts return."""

    def score(rows: Iterable) -> Iterator[dict]:
        total: dict = {}
        n = 0
        for row in rows:
            found = extract_findings(row["text"]).as_dict()
            counts = evaluate.field_counts(
                evaluate.predicted_values(found), evaluate.truth_values(json.loads(row["truth"]))
            )
            total = evaluate.add_counts(total, counts)
            n += 1
        yield {"n": n, "counts": total}

    joined = reports.select("report_id", "text").join(truth, "report_id")
    parts = joined.rdd.mapPartitions(score).collect()
    totals: dict = {}
    for part in parts:
        totals = evaluate.add_counts(totals, part["counts"])
    return {"reports_evaluated": sum(p["n"] for p in parts), "fields": evaluate.summarize(totals)}


def deidentified_texts(reports: DataFrame, *, key: bytes, max_shift_days: int) -> DataFrame:
    """`report_id, text`: the de-identified text under the report's own id (internal: for training models on
    text that no longer identifies anyone, joined to labels by id)."""

    def run(rows: Iterable) -> Iterator[tuple]:
        for row in rows:
            ids = extract_identifiers(row["text"])
            days = deid.shift_days(key, deid.patient_identity(ids, row["report_id"]), max_shift_days)
            yield (row["report_id"], deid.deidentify_text(row["text"], ids, days))

    return reports.sparkSession.createDataFrame(
        reports.select("report_id", "text").rdd.mapPartitions(run), "report_id string, text string"
    )
