"""Small files and atomic directory commits on any Hadoop URI, through Spark's Hadoop FileSystem."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pyspark.sql import SparkSession

IF_EXISTS_CHOICES = ("replace", "refuse")
_if_exists: ContextVar[str] = ContextVar("if_exists", default="replace")


@contextmanager
def if_exists_policy(policy: str) -> Iterator[None]:
    """Inside this block, `atomic_output` over an existing output replaces it or refuses to run."""
    if policy not in IF_EXISTS_CHOICES:
        raise ValueError(f"output.if_exists must be one of {IF_EXISTS_CHOICES}, not {policy!r}")
    token = _if_exists.set(policy)
    try:
        yield
    finally:
        _if_exists.reset(token)


def jvm(spark: SparkSession) -> Any:
    """The JVM gateway of the session's context."""
    return spark.sparkContext._jvm


def hadoop(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """(Hadoop FileSystem, Path) of `uri`, with the session's Hadoop configuration."""
    path = jvm(spark).org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = hadoop(spark, uri)
    return bool(fs.exists(path))


def delete(spark: SparkSession, uri: str) -> None:
    fs, path = hadoop(spark, uri)
    if fs.exists(path):
        fs.delete(path, True)


def mkdirs(spark: SparkSession, uri: str) -> None:
    fs, path = hadoop(spark, uri)
    fs.mkdirs(path)


def list_dir(spark: SparkSession, uri: str) -> list[str]:
    """Names directly under `uri` (empty when it does not exist)."""
    fs, path = hadoop(spark, uri)
    if not fs.exists(path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(path))


@contextmanager
def atomic_file(spark: SparkSession, uri: str) -> Iterator[str]:
    """Yield a temporary sibling of file `uri` to write; on success it is renamed to `uri` (replacing it), on
    failure it is removed. A job killed while writing leaves the previous `uri` whole."""
    uri = uri.rstrip("/")
    name = uri.rsplit("/", 1)[-1]
    # Spelled as `uri` is (a relative path stays relative), for writers that do not go through Hadoop (BigDL's).
    tmp_uri = f"{uri[: len(uri) - len(name)]}.{name}.{uuid.uuid4().hex}.tmp"
    try:
        yield tmp_uri
    except BaseException:
        fs, tmp = hadoop(spark, tmp_uri)
        fs.delete(tmp, False)
        raise
    # Looked up after the write: BigDL's writers close the cached FileSystem of an hdfs:// path when they finish.
    fs, path = hadoop(spark, uri)
    tmp = hadoop(spark, tmp_uri)[1]
    if fs.exists(path):
        fs.delete(path, False)
    if not fs.rename(tmp, path):
        fs.delete(tmp, False)
        raise OSError(f"could not rename into {uri}")


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Write `data` to `uri` via a temporary file and a rename, so readers never see half of it."""
    with atomic_file(spark, uri) as tmp:
        fs, tmp_path = hadoop(spark, tmp)
        out = fs.create(tmp_path, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    write_bytes(spark, uri, text.encode("utf-8"))


def read_text(spark: SparkSession, uri: str) -> str:
    fs, path = hadoop(spark, uri)
    gateway = jvm(spark)
    stream = fs.open(path)
    try:
        reader = gateway.java.io.BufferedReader(gateway.java.io.InputStreamReader(stream, "UTF-8"))
        lines = []
        line = reader.readLine()
        while line is not None:
            lines.append(line)
            line = reader.readLine()
        return "\n".join(lines)
    finally:
        stream.close()


def write_json(spark: SparkSession, uri: str, data: Any) -> None:
    write_text(spark, uri, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(spark: SparkSession, uri: str) -> Any:
    return json.loads(read_text(spark, uri))


@contextmanager
def atomic_output(spark: SparkSession, uri: str, *, overwrite: bool | None = None) -> Iterator[str]:
    """Yield a temporary sibling of `uri` to write into; on success it replaces `uri`, on failure it is removed.

    A job that dies half-way leaves the previous output of `uri` untouched. An existing output is
    replaced unless `overwrite` is False or, when it is None, the `if_exists_policy` is "refuse".
    """
    uri = uri.rstrip("/")
    if overwrite is None:
        overwrite = _if_exists.get() == "replace"
    if exists(spark, uri) and not overwrite:
        raise FileExistsError(f"output {uri} exists; remove it or run with --set output.if_exists=replace")
    tmp = f"{uri}._tmp-{uuid.uuid4().hex[:12]}"
    try:
        yield tmp
    except BaseException:
        delete(spark, tmp)
        raise
    fs, final = hadoop(spark, uri)
    _, tmp_path = hadoop(spark, tmp)
    if not fs.exists(tmp_path):
        fs.mkdirs(tmp_path)
    fs.mkdirs(final.getParent())
    old = None
    if fs.exists(final):
        old = f"{uri}._old-{uuid.uuid4().hex[:12]}"
        fs.rename(final, hadoop(spark, old)[1])
    if not fs.rename(tmp_path, final):
        raise OSError(f"could not commit {tmp} to {uri}")
    if old:
        delete(spark, old)
    success = hadoop(spark, f"{uri}/_SUCCESS")[1]
    if not fs.exists(success):
        fs.create(success, True).close()


def write_local_dir(spark: SparkSession, uri: str, fill: Callable[[str], object]) -> None:
    """Let `fill` write files into a local temporary folder, then commit that folder to `uri` atomically."""
    local = tempfile.mkdtemp(prefix="pipelines-")
    try:
        fill(local)
        with atomic_output(spark, uri) as tmp:
            target_fs, dest = hadoop(spark, tmp)
            target_fs.mkdirs(dest)
            gateway = jvm(spark)
            for entry in sorted(os.listdir(local)):
                target_fs.copyFromLocalFile(
                    False, True, gateway.org.apache.hadoop.fs.Path(os.path.join(local, entry)), dest
                )
    finally:
        shutil.rmtree(local, ignore_errors=True)
