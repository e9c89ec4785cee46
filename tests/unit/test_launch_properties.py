"""`python -m pipelines.context --properties`: what infra/shell.sh hands pyspark, resolved without a JVM."""

from __future__ import annotations

import subprocess
import sys

from pipelines import CONF_DIR, PROJECT_ROOT, context
from pipelines.context import bigdl_jars


def properties(*args: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.context", "--properties", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_local_shell_gets_the_factory_settings():
    props = properties()
    jars = bigdl_jars()
    assert props["spark.master"] == "local[2]"
    assert props["spark.jars"] == ",".join(jars)
    assert props["spark.driver.extraClassPath"] == props["spark.executor.extraClassPath"] == ":".join(jars)
    assert "-Xss16m" in props["spark.driver.extraJavaOptions"]
    assert "-XX:-DontCompileHugeMethods" in props["spark.driver.extraJavaOptions"]
    assert f"-Dlog4j2.configurationFile=file:{CONF_DIR / 'log4j2.properties'}" in props["spark.driver.extraJavaOptions"]
    assert props["spark.pyspark.python"] == sys.executable
    assert props["spark.sql.shuffle.partitions"] == "8"  # from conf/spark/local.conf
    assert props["spark.speculation"] == "false"  # BigDL's defaults
    assert "spark.app.name" not in props  # pyspark names its own


def test_a_standalone_master_gets_standalone_conf():
    props = properties("spark://127.0.0.1:17077")
    assert props["spark.master"] == "spark://127.0.0.1:17077"
    assert props["spark.executor.cores"] == "1" and props["spark.cores.max"] == "2"


def test_usage_error():
    result = subprocess.run([sys.executable, "-m", "pipelines.context", "--frobnicate"], capture_output=True, text=True)
    assert result.returncode == 1 and "usage" in result.stderr


def test_the_project_jar_goes_with_bigdls_once_built(tmp_path, monkeypatch):
    jar = tmp_path / "jars" / "pipelines-jvm.jar"
    monkeypatch.setattr(context, "PROJECT_JAR", str(jar))
    bigdl = bigdl_jars()
    assert bigdl and str(jar) not in bigdl and all("bigdl" in path for path in bigdl)
    jar.parent.mkdir()
    jar.write_bytes(b"PK")
    assert bigdl_jars() == [*bigdl, str(jar)]
