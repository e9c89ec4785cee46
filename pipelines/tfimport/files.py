"""Bytes in and out of any Hadoop URI for model files; plain local paths work without a JVM.

A path without a scheme is read and written directly; any URI (`file://` included) goes through Hadoop's
FileSystem of the running Spark session, and a `file://` URI falls back to direct access without one.
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from pipelines.io import fs as hadoop_fs


def is_local(uri: str, spark: SparkSession | None = None) -> bool:
    """Whether `uri` is accessed directly rather than through Hadoop's FileSystem."""
    scheme = urlparse(uri).scheme
    if scheme == "file":
        return _active(spark) is None
    return scheme == ""


def _active(spark: SparkSession | None) -> SparkSession | None:
    if spark is not None:
        return spark
    from pyspark.sql import SparkSession as S

    return S.getActiveSession()


def local_path(uri: str) -> str:
    return urlparse(uri).path if uri.startswith("file:") else uri


def exists(uri: str, spark: SparkSession | None = None) -> bool:
    if is_local(uri, spark):
        return os.path.exists(local_path(uri))
    fs, path = hadoop_fs.hadoop(_need(spark, uri), uri)
    return bool(fs.exists(path))


def read_bytes(uri: str, spark: SparkSession | None = None) -> bytes:
    """The whole file; FileNotFoundError when it does not exist, IsADirectoryError when it is a folder."""
    if is_local(uri, spark):
        with open(local_path(uri), "rb") as f:
            return f.read()
    spark = _need(spark, uri)
    fs, path = hadoop_fs.hadoop(spark, uri)
    if not fs.exists(path):
        raise FileNotFoundError(uri)
    if fs.getFileStatus(path).isDirectory():
        raise IsADirectoryError(uri)
    jvm = hadoop_fs.jvm(spark)
    stream = fs.open(path)
    try:
        out = jvm.java.io.ByteArrayOutputStream()
        jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, out, 1 << 16, False)
        return bytes(out.toByteArray())
    finally:
        stream.close()


def write_bytes(uri: str, data: bytes, spark: SparkSession | None = None) -> None:
    """Write via a temporary sibling and a rename, so that readers never see half a file."""
    if is_local(uri, spark):
        path = local_path(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return
    hadoop_fs.write_bytes(_need(spark, uri), uri, data)


def copy_to_local(uri: str, local: str, spark: SparkSession | None = None) -> str:
    """Copy `uri` to the local file `local` (a plain copy for local paths); returns `local`."""
    if is_local(uri, spark):
        shutil.copyfile(local_path(uri), local)
    else:
        with open(local, "wb") as f:
            f.write(read_bytes(uri, spark))
    return local


def copy_from_local(local: str, uri: str, spark: SparkSession | None = None) -> None:
    with open(local, "rb") as f:
        write_bytes(uri, f.read(), spark)


def _need(spark: SparkSession | None, uri: str) -> SparkSession:
    active = _active(spark)
    if active is None:
        raise RuntimeError(f"{uri}: a Hadoop URI needs a running SparkSession")
    return active
