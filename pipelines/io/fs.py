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


def _sibling(uri: str, suffix: str) -> str:
    """The hidden sibling `.<name><suffix>` of `uri`, spelled as `uri` is (a relative path stays relative)."""
    name = uri.rsplit("/", 1)[-1]
    return f"{uri[: len(uri) - len(name)]}.{name}{suffix}"


def _restore(spark: SparkSession, uri: str) -> None:
    """Finish a `_commit` to `uri` that was killed half-way: the previous version it moved aside is put back when
    `uri` is missing, and deleted when the new version made it."""
    fs, path = hadoop(spark, uri)
    previous = hadoop(spark, _sibling(uri, ".previous"))[1]
    if not fs.exists(previous):
        return
    if fs.exists(path):
        fs.delete(previous, True)
    elif not fs.rename(previous, path):
        raise OSError(f"could not restore the previous {uri}")


def _commit(spark: SparkSession, tmp_uri: str, uri: str) -> None:
    """Rename `tmp_uri` to `uri`. A previous `uri` is first moved aside (`.<name>.previous`) and deleted last, so a
    commit killed in between leaves it for `_restore`, which every writer of `uri` runs first."""
    fs, path = hadoop(spark, uri)
    tmp, previous = hadoop(spark, tmp_uri)[1], hadoop(spark, _sibling(uri, ".previous"))[1]
    replacing = bool(fs.exists(path))
    if replacing and not fs.rename(path, previous):
        raise OSError(f"could not move the previous {uri} aside")
    if not fs.rename(tmp, path):
        if replacing:
            fs.rename(previous, path)
        raise OSError(f"could not rename {tmp_uri} to {uri}")
    if replacing:
        fs.delete(previous, True)


@contextmanager
def atomic_file(spark: SparkSession, uri: str) -> Iterator[str]:
    """Yield a temporary sibling of file `uri` to write; on success it is renamed to `uri` (replacing it), on
    failure it is removed. A job killed while writing leaves the previous `uri` whole; killed while committing, it
    leaves it moved aside, for the next writer to put back (`_commit`)."""
    uri = uri.rstrip("/")
    _restore(spark, uri)
    # Spelled as `uri` is, for writers that do not go through Hadoop (BigDL's).
    tmp_uri = _sibling(uri, f".{uuid.uuid4().hex}.tmp")
    try:
        yield tmp_uri
        # Looked up after the write: BigDL's writers close the cached FileSystem of an hdfs:// path when they finish.
        _commit(spark, tmp_uri, uri)
    except BaseException:
        delete(spark, tmp_uri)
        raise


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

    A job that dies half-way leaves the previous output of `uri` untouched (moved aside, for the next writer to put
    back, when it dies committing: `_commit`). An existing output is replaced unless `overwrite` is False or, when it
    is None, the `if_exists_policy` is "refuse".
    """
    uri = uri.rstrip("/")
    _restore(spark, uri)
    if overwrite is None:
        overwrite = _if_exists.get() == "replace"
    if exists(spark, uri) and not overwrite:
        raise FileExistsError(f"output {uri} exists; remove it or run with --set output.if_exists=replace")
    tmp = f"{uri}._tmp-{uuid.uuid4().hex[:12]}"
    try:
        yield tmp
        fs, tmp_path = hadoop(spark, tmp)
        fs.mkdirs(tmp_path)
        success = hadoop(spark, f"{tmp}/_SUCCESS")[1]
        if not fs.exists(success):
            fs.create(success, True).close()
        fs.mkdirs(hadoop(spark, uri)[1].getParent())
        _commit(spark, tmp, uri)
    except BaseException:
        delete(spark, tmp)
        raise


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
