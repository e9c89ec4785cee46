"""Reading EEG archives from any Hadoop URI: EDF headers (without the signals), signals on demand, report files.

Files are listed by `probe.list_files` (the JVM's Hadoop FileSystem, recursively; names starting with `.` or `_`
skipped), because Spark's file sources silently drop empty files and every file read must be counted. EDF headers are then read
either by the driver through that FileSystem (`via="driver"`: only the header bytes plus a small probe of the
data cross the wire, a few files at a time) or by the executors from Spark's `binaryFile` source (`via="spark"`:
whole files are read, but in parallel). Either way the bytes are parsed on the executors and each file becomes
one header row or one quarantine row; reports are always read and decoded on the executors.

Quarantine reasons are the ingests' (`probe.FILE_REASONS`): `empty`, `not_text` (a report with NUL bytes or not
UTF-8), `corrupt_edf` (the detail starts with the EDF reader's own code: `truncated_header`, `corrupt_header`, ...),
and `missing` or `unreadable` for a listed file gone or unreadable when read. Details give offsets and field names,
never report text or header values. An EDF whose data section is shorter than its header says is read (`tolerated`
holds `data_truncated`); its whole records are there to read. No file readable is an `InputError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from py4j.protocol import Py4JJavaError
from pyspark import RDD
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    LongType,
    StringType,
    StructField,
    StructType,
)

from pipelines.eeg import edf
from pipelines.eeg.schema import HEADER_SCHEMA, QUARANTINE_SCHEMA, REPORT_SCHEMA
from pipelines.errors import InputError
from pipelines.io import probe
from pipelines.io.fs import hadoop

log = logging.getLogger(__name__)

PROBE_BYTES = 4096  # data bytes read after the header, to detect a mangled data section
DRIVER_READERS = 8  # driver threads reading headers through the JVM gateway
EDF_GLOB = "*.edf"
REPORT_GLOB = "*.txt"

# Header fields (nullable past the file's identity), then the quarantine reason and detail (None for a good file).
_COMBINED = StructType(
    HEADER_SCHEMA.fields[:3]
    + [StructField(f.name, f.dataType, True) for f in HEADER_SCHEMA.fields[3:]]
    + [StructField("reason", StringType(), True), StructField("detail", StringType(), True)]
)


@dataclass
class ReadResult:
    """What a reader made of every file it listed: the parsed rows, the quarantine, and one check per file.

    Both frames are projections of one cached frame; `unpersist()` releases it.
    """

    rows: DataFrame
    quarantine: DataFrame
    checks: list[probe.FileCheck]
    _cached: DataFrame

    @property
    def read(self) -> int:
        return len(self.checks)

    @property
    def parsed(self) -> int:
        return sum(1 for c in self.checks if c.reason is None)

    @property
    def quarantined(self) -> int:
        return sum(probe.count_reasons(self.checks).values())

    def counts(self) -> dict:
        """`read`, `parsed`, `quarantined`, `quarantined_by_reason` and the ingests' `files` block."""
        by_reason = probe.count_reasons(self.checks)
        return {
            "read": self.read,
            "parsed": self.parsed,
            "quarantined": sum(by_reason.values()),
            "quarantined_by_reason": {r: n for r, n in sorted(by_reason.items()) if n},
            "files": probe.file_counts(self.checks, by_reason),
        }

    def unpersist(self) -> None:
        self._cached.unpersist()


def _split(
    spark: SparkSession, combined: DataFrame, row_columns: list[str], files: list[tuple[str, int]], what: str, uri: str
) -> ReadResult:
    """Cache `combined` (rows with a `reason` column, None for good rows) and split it; a listed file the reader
    skipped is quarantined with `probe.why_skipped`'s reason. No file parsed is an `InputError`."""
    combined = combined.cache()
    seen = {
        probe.file_key(r["path"]): probe.FileCheck(r["path"], r["reason"], r["detail"] or "")
        for r in combined.select("path", "reason", "detail").collect()
    }
    checks, skipped = [], []
    for path, size in files:
        check = seen.get(probe.file_key(path))
        if check is None:
            check = probe.FileCheck(path).quarantine(*probe.why_skipped(spark, path))
            skipped.append((path, path.rsplit("/", 1)[-1], size, check.reason, check.detail))
        checks.append(check)
    # Counts only: clinical file names can carry patient names; the quarantine output names the files.
    log.info("%s under %s: %s", what, uri, probe.describe(checks))
    if not any(c.reason is None for c in checks):
        combined.unpersist()
        raise InputError(f"no readable {what} under {uri}: {probe.describe(checks)}")
    rows = combined.where(F.col("reason").isNull()).select(*row_columns)
    quarantine = (
        combined.where(F.col("reason").isNotNull())
        .withColumnRenamed("path", "source_file")
        .select(*QUARANTINE_SCHEMA.fieldNames())
        .unionByName(spark.createDataFrame(skipped, QUARANTINE_SCHEMA))
    )
    return ReadResult(rows, quarantine, checks, combined)


def read_prefix(spark: SparkSession, uri: str, n: int, offset: int = 0) -> bytes:
    """Up to `n` bytes of `uri` from `offset`, through the JVM's Hadoop FileSystem."""
    hfs, path = hadoop(spark, uri)
    stream = hfs.open(path)
    try:
        if offset:
            stream.seek(offset)
        return bytes(stream.readNBytes(n))
    finally:
        stream.close()


def read_header_bytes(spark: SparkSession, uri: str) -> bytes:
    """The header of an EDF file plus `PROBE_BYTES` of data (or whatever the file has)."""
    hfs, path = hadoop(spark, uri)
    stream = hfs.open(path)
    try:
        first = bytes(stream.readNBytes(edf.BLOCK))
        try:
            length = edf.header_length(first)
        except edf.EdfHeaderError:
            return first
        return first + bytes(stream.readNBytes(length - edf.BLOCK + PROBE_BYTES))
    finally:
        stream.close()


def header_row(path: str, size: int, data: bytes) -> tuple:
    """One row of `_COMBINED`: header fields with `reason` None, or the quarantine reason and detail."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    try:
        h = edf.parse_header(data, file_size=size)
    except edf.EdfHeaderError as e:
        reason, detail = ("empty", "no bytes") if e.reason == edf.EMPTY_FILE else ("corrupt_edf", str(e))
        return (path, name, size) + (None,) * (len(HEADER_SCHEMA.fields) - 3) + (reason, detail)
    rates = [h.sample_rate(s) for s in h.data_signals]
    edf_type = f"EDF+{h.edf_plus}" if h.edf_plus else "EDF"
    return (
        path,
        name,
        size,
        edf_type,
        h.start,
        h.n_records,
        float(h.record_duration),
        float(h.duration_s),
        h.n_signals,
        [s.label for s in h.signals],
        [edf.normalize_label(s.label) for s in h.data_signals],
        float(max(rates)) if rates else None,
        h.patient.code,
        h.patient.sex,
        h.patient.birthdate,
        h.patient.name,
        h.patient.age,
        h.equipment,
        h.admin_code,
        list(h.tolerated),
        None,
        None,
    )


def _parse_partition(rows: Iterable[tuple[str, int, bytes]]) -> Iterator[tuple]:
    for path, size, data in rows:
        yield header_row(path, size, bytes(data))


def read_edf_headers(
    spark: SparkSession, uri: str, *, via: str = "driver", partitions: int | None = None
) -> ReadResult:
    """Every `*.edf` file under `uri` as a `HEADER_SCHEMA` row or a `QUARANTINE_SCHEMA` row, never both."""
    files = probe.list_files(spark, uri, [EDF_GLOB])
    if not files:
        raise InputError(f"no EDF files under {uri}")
    sc = spark.sparkContext
    slices = max(1, min(len(files), partitions or sc.defaultParallelism))
    log.info("reading the headers of %d EDF files under %s (via %s)", len(files), uri, via)
    if via == "driver":
        # py4j serves each driver thread on its own connection: a few threads hide the round trips.
        with ThreadPoolExecutor(max_workers=DRIVER_READERS) as pool:
            heads = list(pool.map(lambda f: _header_or_none(spark, *f), files))
        payload = [(path, size, head) for (path, size), head in zip(files, heads) if head is not None]
        rdd = sc.parallelize(payload, slices).mapPartitions(_parse_partition)
    elif via == "spark":
        # Spark's file sources skip empty files: those are decided here, the others are read on the executors.
        rdd = sc.parallelize([(path, 0, b"") for path, size in files if size == 0], 1).mapPartitions(_parse_partition)
        parsed = (
            _listed_content(spark, uri, EDF_GLOB, files)
            .map(lambda r: (r[0], r[1], _header_slice(bytes(r[2]))))
            .mapPartitions(_parse_partition)
        )
        rdd = rdd.union(parsed)
    else:
        raise ValueError(f"via must be 'driver' or 'spark', not {via!r}")
    return _split(spark, spark.createDataFrame(rdd, _COMBINED), HEADER_SCHEMA.fieldNames(), files, "EDF files", uri)


def _header_or_none(spark: SparkSession, path: str, size: int) -> bytes | None:
    """`read_header_bytes`, b"" for an empty file, None when the file cannot be read (gone, no permission)."""
    if not size:
        return b""
    try:
        return read_header_bytes(spark, path)
    except Py4JJavaError:
        return None


def _listed_content(spark: SparkSession, uri: str, glob: str, files: list[tuple[str, int]]) -> RDD:
    """(path, length, content) of the listed files under `uri` that Spark's `binaryFile` source reads; files gone or
    unreadable by then are left out, for `_split` to account for."""
    listed = {path for path, _ in files}
    content = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", _case_blind(glob))
        .option("ignoreMissingFiles", "true")
        .option("ignoreCorruptFiles", "true")
        .load(uri)
        .select("path", "length", "content")
    )
    return content.rdd.filter(lambda r: str(r[0]) in listed).map(lambda r: (str(r[0]), int(r[1]), r[2]))


def tolerated_counts(headers: DataFrame) -> dict[str, int]:
    """How many parsed headers needed each tolerance (codes only: safe to log and store)."""
    rows = headers.select(F.explode("tolerated").alias("code")).groupBy("code").count().collect()
    return dict(sorted((r["code"], int(r["count"])) for r in rows))


def _case_blind(glob: str) -> str:
    """`*.edf` -> `*.[eE][dD][fF]` (Hadoop's glob filter is case-sensitive)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in glob)


def _header_slice(content: bytes) -> bytes:
    try:
        return content[: edf.header_length(content[: edf.BLOCK]) + PROBE_BYTES]
    except edf.EdfHeaderError:
        return content[: edf.BLOCK]


def read_header(spark: SparkSession, uri: str) -> edf.EdfHeader:
    """The parsed header of one file (raises `EdfHeaderError`)."""
    hfs, path = hadoop(spark, uri)
    size = int(hfs.getFileStatus(path).getLen())
    return edf.parse_header(read_header_bytes(spark, uri), file_size=size)


def read_signals(
    spark: SparkSession,
    uri: str,
    *,
    channels: Iterable[str] | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    physical: bool = True,
) -> dict[str, np.ndarray]:
    """Signals of one file on demand: only the records covering [start_s, start_s + duration_s) are read.

    A data section mangled by a text-mode copy is read whole and repaired; samples whose bytes were lost are NaN.
    """
    header = read_header(spark, uri)
    if header.record_duration <= 0:
        return {}
    first = max(0, int(start_s // header.record_duration))
    if duration_s is None:
        last = header.n_records
    else:
        last = min(header.n_records, int(np.ceil((start_s + duration_s) / header.record_duration)))
    count = max(0, last - first)
    unknown = None
    if header.text_mode_corruption:
        raw = read_prefix(spark, uri, int(header.file_size or 0) - header.header_bytes, header.header_bytes)
        repaired, mask = edf.repair_text_mode(raw)
        lo, hi = first * header.record_bytes, (first + count) * header.record_bytes
        data, unknown = repaired[lo:hi], mask[lo:hi]
    else:
        data = read_prefix(spark, uri, count * header.record_bytes, header.header_bytes + first * header.record_bytes)
    return edf.decode_records(header, data, channels=channels, unknown=unknown, physical=physical)


_REPORT_COMBINED = StructType(
    [
        StructField("report_id", StringType(), False),
        StructField("path", StringType(), False),
        StructField("file_size", LongType(), False),
        StructField("text", StringType(), True),
        StructField("reason", StringType(), True),
        StructField("detail", StringType(), True),
    ]
)


def decode_report(content: bytes) -> tuple[str | None, str | None, str | None]:
    """(text, reason, detail): strict UTF-8 (a BOM is dropped, line ends made `\\n`); an empty or blank file is
    `empty`, NUL bytes or bytes that are not UTF-8 are `not_text` (the detail gives an offset, never text)."""
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    nul = content.find(b"\x00")
    if nul >= 0:
        return None, "not_text", f"NUL byte at {nul}"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, "not_text", f"not UTF-8 at byte {e.start}"
    if not text.strip():
        return None, "empty", f"{len(content)} bytes, no text"
    return text.replace("\r\n", "\n").replace("\r", "\n"), None, None


def read_reports(spark: SparkSession, uri: str, *, partitions: int | None = None) -> ReadResult:
    """Every `*.txt` file under `uri` as a `REPORT_SCHEMA` row (report_id = file name) or a quarantine row.

    The quarantine holds no report text.
    """
    files = probe.list_files(spark, uri, [REPORT_GLOB])
    if not files:
        raise InputError(f"no report files (*.txt) under {uri}")
    names = [path.rsplit("/", 1)[-1] for path, _ in files]
    if len(set(names)) != len(names):
        raise InputError(
            f"{len(names) - len(set(names))} report file names under {uri} occur more than once;"
            " report ids (file names) must be unique"
        )
    sc = spark.sparkContext

    def decode(rows):
        for path_, size, content in rows:
            text, reason, detail = decode_report(bytes(content))
            yield (path_.rsplit("/", 1)[-1], path_, int(size), text, reason, detail)

    rdd = sc.parallelize([(path, 0, b"") for path, size in files if size == 0], 1)
    raw = _listed_content(spark, uri, REPORT_GLOB, files)
    if partitions:
        raw = raw.repartition(partitions)
    rdd = rdd.union(raw)
    combined = spark.createDataFrame(rdd.mapPartitions(decode), _REPORT_COMBINED).withColumnRenamed(
        "report_id", "file_name"
    )
    combined = combined.withColumn("report_id", F.col("file_name"))
    return _split(spark, combined, REPORT_SCHEMA.fieldNames(), files, "report files", uri)
