"""File-level checks of a batch before Spark parses it: every listed file is either read or quarantined with one reason.

`probe` is one Spark job over the file list (the `binaryFile` source, so the driver never holds the data): gzip and
bzip2 files are decompressed whole on the executors, so a truncated or corrupt stream is found before any of its rows
is parsed; plain files are checked on their first `HEAD_BYTES`. Reasons (`FILE_REASONS`, first found wins):

- `missing`: listed, but gone when read.
- `unreadable`: there, but it cannot be opened or read (permissions, an I/O error).
- `empty`: no bytes (after decompression).
- `corrupt_compression`: a compressed stream that is truncated or corrupt.
- `not_text`: NUL bytes, or not UTF-8, in the head.
- `schema_mismatch`: the header lacks a required column or repeats one (`check_columns`).
- `corrupt_edf`: an EDF header that cannot be interpreted (`pipelines.eeg.sources`; the detail names the field).

A compressed file that breaks part way is quarantined whole: none of its rows is read. A plain file is checked on its
head only, so damage further in reaches the row checks, which quarantine the lines concerned.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import fnmatch
import gzip
import io
import logging
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.errors import InputError
from pipelines.io import fs

log = logging.getLogger(__name__)

FILE_REASONS = ("missing", "unreadable", "empty", "corrupt_compression", "not_text", "schema_mismatch", "corrupt_edf")
HEAD_BYTES = 1 << 16
_DECOMPRESSORS: dict[str, Callable[[io.BytesIO], io.BufferedIOBase]] = {
    ".gz": lambda data: gzip.GzipFile(fileobj=data),
    ".bz2": lambda data: bz2.BZ2File(data),
}


@dataclass(frozen=True)
class FileCheck:
    """One listed file: `reason` None when it is to be read; `header` the names of its first line, as written."""

    path: str
    reason: str | None = None
    detail: str = ""
    header: tuple[str, ...] = ()

    def quarantine(self, reason: str, detail: str) -> FileCheck:
        return dataclasses.replace(self, reason=reason, detail=detail)


def list_files(spark: SparkSession, uri: str, patterns: Sequence[str]) -> list[tuple[str, int]]:
    """(path, size) of the files at `uri` (a file, a folder searched recursively, or a glob) whose names match one of
    `patterns` case-insensitively, sorted by path; nothing at `uri` is an `InputError`.

    Hidden names (`.x`, `_x`: checksums, markers, temporary files) are left out, as Spark does. Listed by the JVM's
    Hadoop FileSystem: Spark's file sources would silently drop empty files, which must be counted.
    """
    fsys, path = fs.hadoop(spark, uri.rstrip("/"))
    matched = fsys.globStatus(path)
    if not matched:
        raise InputError(f"input {uri} does not exist")
    found: dict[str, int] = {}
    for status in matched:
        files = fsys.listFiles(status.getPath(), True)  # a file lists itself
        while files.hasNext():
            file = files.next()
            name = str(file.getPath().getName()).lower()
            if not name.startswith((".", "_")) and any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns):
                found[str(file.getPath().toString())] = int(file.getLen())
    return sorted(found.items())


def file_key(uri: str) -> tuple[str, str]:
    """A file's identity whatever the spelling: Spark gives file:///x (URL-encoded) or file:/x, Hadoop file:/x."""
    parsed = urlparse(uri)
    return parsed.scheme or "file", unquote(parsed.path)


def probe(spark: SparkSession, paths: Sequence[str]) -> list[FileCheck]:
    """The check of each of `paths` (in that order), in one Spark job; see the module docstring."""
    if not paths:
        return []
    found = {file_key(path): check for path, check in _probe_job(spark, list(paths))}
    checks = []
    for path in paths:
        check = found.get(file_key(path))
        if check is None:  # skipped by the reader
            check = FileCheck(path).quarantine(*why_skipped(spark, path))
        checks.append(dataclasses.replace(check, path=path))
    return checks


def why_skipped(spark: SparkSession, path: str) -> tuple[str, str]:
    """(reason, detail) of a listed file a reader skipped: it is gone, it has no bytes (Spark leaves those out),
    or it cannot be read."""
    fsys, hadoop_path = fs.hadoop(spark, path)
    if not fsys.exists(hadoop_path):
        return "missing", "gone before it was read"
    if fsys.getFileStatus(hadoop_path).getLen() == 0:
        return "empty", "no bytes"
    return "unreadable", "could not be opened or read"


def _probe_job(spark: SparkSession, paths: list[str]) -> list[tuple[str, FileCheck]]:
    present = paths
    for _ in range(3):  # the reader lists every path first; one that vanished since our listing fails that
        try:
            data = (
                spark.read.format("binaryFile")
                .option("ignoreMissingFiles", True)
                .option("ignoreCorruptFiles", True)
                .load(present)
            )
            break
        except AnalysisException as e:
            if "PATH_NOT_FOUND" not in str(e):
                raise
            present = [p for p in present if fs.exists(spark, p)]
    if not present:
        return []
    compressed = F.lit(False)
    for suffix in _DECOMPRESSORS:
        compressed = compressed | F.lower("path").endswith(suffix)
    head = F.when(compressed, F.col("content")).otherwise(F.substring("content", 1, HEAD_BYTES))
    rows = data.select("path", head.alias("data")).rdd.map(lambda r: (r[0], inspect(r[0], bytes(r[1]))))
    return rows.collect()


def inspect(path: str, data: bytes) -> FileCheck:
    """The check of a file from its bytes: the whole file when compressed, else at least its head."""
    check = FileCheck(path)
    opener = next((o for suffix, o in _DECOMPRESSORS.items() if path.lower().endswith(suffix)), None)
    if opener is not None and data:
        try:
            with opener(io.BytesIO(data)) as stream:
                text = stream.read(HEAD_BYTES)
                while stream.read(1 << 20):
                    pass
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            return check.quarantine("corrupt_compression", f"{type(e).__name__}: {e}")
    else:
        text = data[:HEAD_BYTES]
    if not text:
        return check.quarantine("empty", "no bytes")
    nul = text.find(b"\x00")
    if nul >= 0:
        return check.quarantine("not_text", f"NUL byte at {nul}")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(text, final=len(text) < HEAD_BYTES)
    except UnicodeDecodeError as e:
        return check.quarantine("not_text", f"not UTF-8 at byte {e.start}")
    first = text.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    return dataclasses.replace(check, header=tuple(name.strip().strip('"') for name in first.split(",")))


def check_columns(check: FileCheck, required: Iterable[str]) -> FileCheck:
    """`check` quarantined as `schema_mismatch` when its header repeats a column or lacks one of `required`
    (names compared trimmed and in lower case)."""
    if check.reason is not None:
        return check
    names = [name.lower() for name in check.header]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return check.quarantine("schema_mismatch", f"column(s) repeated in the header: {', '.join(repeated)}")
    missing = [c for c in required if c not in names]
    if missing:
        return check.quarantine("schema_mismatch", f"no column(s) {', '.join(missing)} in the header")
    return check


def file_counts(checks: Sequence[FileCheck], by_reason: dict[str, int]) -> dict[str, Any]:
    """`listed`, `read`, `quarantined`, `quarantined_by_reason` (`by_reason`: as written, `count_by_reason`, or as
    checked, `count_reasons`), checked: listed = read + quarantined."""
    counts: dict[str, Any] = {
        "listed": len(checks),
        "read": sum(1 for c in checks if c.reason is None),
        "quarantined": sum(by_reason.values()),
        "quarantined_by_reason": by_reason,
    }
    if counts["listed"] != counts["read"] + counts["quarantined"]:
        raise RuntimeError(f"file counts do not add up: {counts}")
    return counts


def count_reasons(checks: Sequence[FileCheck]) -> dict[str, int]:
    """Files per reason, every one of `FILE_REASONS` present (0 when none)."""
    return {r: sum(1 for c in checks if c.reason == r) for r in FILE_REASONS}


def describe(checks: Sequence[FileCheck]) -> str:
    """The files' fate in a few words: "3 file(s) listed, 1 read, 2 quarantined (empty 1, not_text 1)"."""
    bad = count_reasons(checks)
    reasons = ", ".join(f"{r} {n}" for r, n in bad.items() if n)
    read = sum(1 for c in checks if c.reason is None)
    return f"{len(checks)} file(s) listed, {read} read, {sum(bad.values())} quarantined" + (
        f" ({reasons})" if reasons else ""
    )


def log_quarantined(checks: Sequence[FileCheck], *, shown: int = 5) -> None:
    """One warning naming the quarantined files (the first `shown`) and their reasons; every one at debug level."""
    bad = [c for c in checks if c.reason is not None]
    if not bad:
        return
    for c in bad:
        log.debug("file quarantined (%s): %s: %s", c.reason, c.path, c.detail)
    listed = "; ".join(f"{c.path} ({c.reason}: {c.detail})" for c in bad[:shown])
    more = f"; and {len(bad) - shown} more" if len(bad) > shown else ""
    log.warning("%d of %d file(s) quarantined: %s%s", len(bad), len(checks), listed, more)
