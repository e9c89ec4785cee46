"""The EEG domain's row schemas in one place: what the readers return (EDF headers, report files, their quarantine),
what curation writes (findings), and what pairing works on (report and file facts, candidate pairs' features)."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
)

# ------------------------------------------------------------------------------------------------ readers

HEADER_SCHEMA = StructType(
    [
        StructField("path", StringType(), False),
        StructField("file_name", StringType(), False),
        StructField("file_size", LongType(), False),
        StructField("edf_type", StringType(), False),
        StructField("start", TimestampNTZType(), False),
        StructField("n_records", IntegerType(), False),
        StructField("record_duration", DoubleType(), False),
        StructField("duration_s", DoubleType(), False),
        StructField("n_signals", IntegerType(), False),
        StructField("labels", ArrayType(StringType()), False),
        StructField("electrodes", ArrayType(StringType()), False),
        StructField("sample_rate", DoubleType(), True),
        StructField("patient_code", StringType(), True),
        StructField("patient_sex", StringType(), True),
        StructField("patient_birthdate", DateType(), True),
        StructField("patient_name", StringType(), True),
        StructField("patient_age", DoubleType(), True),
        StructField("equipment", StringType(), True),
        StructField("admin_code", StringType(), True),
        StructField("tolerated", ArrayType(StringType()), False),
    ]
)

QUARANTINE_SCHEMA = StructType(
    [
        StructField("source_file", StringType(), False),
        StructField("file_name", StringType(), False),
        StructField("file_size", LongType(), True),
        StructField("reason", StringType(), False),
        StructField("detail", StringType(), True),
    ]
)

REPORT_SCHEMA = StructType(
    [
        StructField("report_id", StringType(), False),
        StructField("path", StringType(), False),
        StructField("text", StringType(), False),
    ]
)

# ------------------------------------------------------------------------------------------------ curation

EVENT = StructType([StructField("time", StringType()), StructField("kind", StringType())])
DAY = StructType(
    [
        StructField("start", StringType()),  # shifted
        StructField("end", StringType()),
        StructField("events", ArrayType(StructType(EVENT.fields + [StructField("description", StringType())]))),
    ]
)

FINDINGS_SCHEMA = StructType(
    [
        StructField("report_id", StringType(), False),  # the file name, or a keyed hash when the name identifies
        StructField("report_key", StringType(), False),
        StructField("patient_key", StringType(), False),
        StructField("sections", ArrayType(StringType()), False),
        StructField("age", IntegerType(), True),
        StructField("age_90_or_over", BooleanType(), False),
        StructField("sex", StringType(), True),
        StructField("study_dates", ArrayType(StringType()), False),  # shifted
        StructField("study_type", StringType(), True),
        StructField("duration_minutes", IntegerType(), True),
        StructField("impression", StringType(), True),
        StructField("epileptiform", ArrayType(StringType()), False),
        StructField("slowing", StringType(), True),
        StructField("slowing_location", StringType(), True),
        StructField("seizure_present", BooleanType(), False),
        StructField("seizure_count", IntegerType(), True),
        StructField("seizure_types", ArrayType(StringType()), False),
        StructField("events", ArrayType(EVENT), False),
        StructField("monitoring_days", ArrayType(DAY), False),  # read from the de-identified text
        StructField("medications", ArrayType(StringType()), False),
        StructField("heart_rate", IntegerType(), True),
    ]
)
TEXT_FIELD = StructField("text_deid", StringType(), True)

# ------------------------------------------------------------------------------------------------ pairing

REPORT_FACTS = StructType(
    [
        StructField("report_id", StringType(), False),
        StructField("r_mrn", StringType(), True),
        StructField("r_name", StringType(), True),
        StructField("r_birthdate", DateType(), True),
        StructField("r_sex", StringType(), True),
        StructField("r_age", IntegerType(), True),
        StructField("r_first", DateType(), True),
        StructField("r_last", DateType(), True),
        StructField("r_tokens", ArrayType(StringType()), False),
        StructField("r_sessions", ArrayType(StringType()), False),
        StructField("r_keys", ArrayType(StringType()), False),
    ]
)

FILE_FACTS = StructType(
    [
        StructField("edf_file", StringType(), False),
        StructField("start", TimestampNTZType(), False),
        StructField("f_mrn", StringType(), True),
        StructField("f_name", StringType(), True),
        StructField("f_birthdate", DateType(), True),
        StructField("f_birth_year_only", IntegerType(), False),
        StructField("f_sex", StringType(), True),
        StructField("f_age", DoubleType(), True),
        StructField("f_tokens", ArrayType(StringType()), False),
        StructField("f_sessions", ArrayType(StringType()), False),
        StructField("f_keys", ArrayType(StringType()), False),
    ]
)

FEATURE_ROWS = StructType(
    [
        StructField("report_id", StringType(), False),
        StructField("edf_file", StringType(), False),
        StructField("start", TimestampNTZType(), False),
        StructField("features", ArrayType(DoubleType()), False),
    ]
)
