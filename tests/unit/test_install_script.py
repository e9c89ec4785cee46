"""infra/install.sh is the one installation: `make venv` and docker/Dockerfile run it on the same files.

The install itself takes minutes (measured by hand, see README); these checks run the script's own listing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from pipelines import PROJECT_ROOT
from pipelines.context import PROJECT_JAR

SCRIPT = PROJECT_ROOT / "infra" / "install.sh"


def install(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def steps(*args: str, env: dict | None = None) -> list[str]:
    result = install("--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


SCRIPTS = ["infra/install.sh", "infra/shell.sh", "docker/entrypoint.sh", "infra/hdfs.sh", "infra/yarn.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(PROJECT_ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_scripts_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    scripts = [str(PROJECT_ROOT / s) for s in (*SCRIPTS, "infra/hadoop.sh", "infra/lib.sh")]
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_install_steps_in_order(tmp_path):
    venv = tmp_path / "venv"
    assert steps(str(venv), env={"PYTHON": "python3.11", "PIP_FLAGS": ""}) == [
        f"python3.11 -m venv {venv}",
        f"{venv}/bin/pip install --quiet -r requirements.txt",
        f"{venv}/bin/pip install --quiet --no-deps -r requirements-bigdl.txt",
        # The project's BigDL module, against the jars just installed, into the package before it is installed.
        f"mvn -q -f jvm/pom.xml package -Dbigdl.share={venv}/lib/python3.11/site-packages/bigdl/share",
        "mkdir -p pipelines/jars",
        "cp jvm/target/pipelines-jvm.jar pipelines/jars/pipelines-jvm.jar",
        f"{venv}/bin/pip install --quiet --no-deps --no-build-isolation -e .",
    ]
    assert os.path.relpath(PROJECT_JAR, PROJECT_ROOT) == "pipelines/jars/pipelines-jvm.jar"  # where context finds it
    # The Docker layers: dependencies, then the project; together exactly the whole installation.
    assert steps("--only", "deps", str(venv)) + steps("--only", "project", str(venv)) == steps(str(venv))
    assert steps()[0].endswith(f"-m venv {PROJECT_ROOT}/.venv")  # the default, as `make` wants it


def test_bad_options_are_refused():
    for args in (["--only", "tests"], ["--frobnicate"]):
        result = install(*args)
        assert result.returncode == 2 and "install.sh:" in result.stderr


def test_the_project_step_needs_maven_and_a_jdk(tmp_path):
    # A PATH with bash and the basics but no mvn, java or javac: one line saying what is missing, before any step.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    path = {"PATH": str(bin_dir)}
    for args in ([str(tmp_path / "venv")], ["--only", "project", str(tmp_path / "venv")]):
        result = install(*args, env=path)
        assert result.returncode == 1 and not (tmp_path / "venv").exists()
        assert result.stderr.splitlines() == [
            "install.sh: mvn not found; jvm/ needs Maven and a JDK 17 (Debian: maven openjdk-17-jdk-headless)"
        ]
    # The dry run needs neither (nor the venv).
    assert install("--dry-run", str(tmp_path / "venv"), env=path).returncode == 0


def test_make_and_the_dockerfile_run_the_script_on_the_files_it_reads():
    inputs = install("--inputs").stdout.split()
    jvm_sources = sorted(
        str(path.relative_to(PROJECT_ROOT)) for path in (PROJECT_ROOT / "jvm" / "src").rglob("*") if path.is_file()
    )
    assert inputs == ["requirements.txt", "requirements-bigdl.txt", "setup.py", "jvm/pom.xml", *jvm_sources]
    assert any(name.endswith(".scala") for name in jvm_sources)
    assert all((PROJECT_ROOT / name).is_file() for name in inputs)

    make = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "venv", "VENV=/tmp/venv-x"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert make.returncode == 0, make.stderr
    assert make.stdout.splitlines() == [
        "PYTHON=python3.11 infra/install.sh /tmp/venv-x",
        "touch /tmp/venv-x/.installed",
    ]
    # The stamp's prerequisites as make sees them: a change in a requirement or a Scala source reinstalls.
    database = subprocess.run(
        ["make", "--no-print-directory", "-p", "-n", "venv", "VENV=/tmp/venv-x"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert database.returncode == 0, database.stderr
    prerequisites = re.search(r"^/tmp/venv-x/\.installed: (.*)$", database.stdout, re.M).group(1).split()
    assert set(prerequisites) == {"infra/install.sh", *inputs}
    assert {"jvm/pom.xml", *jvm_sources} <= set(prerequisites)
    clean = subprocess.run(
        ["make", "--no-print-directory", "-n", "clean"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert {"jvm/target", "pipelines/jars"} <= set(clean.stdout.split())
    # `make package` builds the wheel (and from it the packed venv) with the jar the install put into the package.
    assert 'package_data={"pipelines": ["jars/*.jar"]}' in (PROJECT_ROOT / "setup.py").read_text()

    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    runs = re.findall(r"^RUN PYTHON=python3\.11 infra/install\.sh (--only \S+ \S+)", dockerfile, re.M)
    assert runs == ["--only deps /opt/venv", "--only project /opt/venv"]
    deps_run = dockerfile.index("infra/install.sh --only deps")
    project_run = dockerfile.index("infra/install.sh --only project")
    copied = " ".join(re.findall(r"^COPY (.*)$", dockerfile[:deps_run], re.M)).split()
    deps_inputs = [name for name in inputs if not name.startswith("jvm/")]
    assert set(deps_inputs) | {"infra/install.sh"} <= set(copied), "the dependency layer must copy what it reads"
    assert "jvm" not in copied, "a change in Scala must not invalidate the dependency layer"
    # The project layer compiles jvm/ with Maven and a JDK, before its jars are linked into /opt/bigdl/jars.
    project_copies = re.findall(r"^COPY (\S+) \1$", dockerfile[deps_run:project_run], re.M)
    assert {"pipelines", "jobs", "conf", "jvm"} <= set(project_copies)
    packages = re.search(r"apt-get install -y --no-install-recommends ([^\\]*)", dockerfile).group(1).split()
    assert {"openjdk-17-jdk-headless", "maven"} <= set(packages)
    assert project_run < dockerfile.index("python -m pipelines.context --jars") < dockerfile.index("USER 185")
    dockerignore = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {"jvm/target", "pipelines/jars"} <= set(dockerignore), "the image builds its own jar"
    assert re.search(r"^FROM python:3\.11-", dockerfile, re.M)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/opt/entrypoint.sh"]' in dockerfile


def test_the_image_conf_points_at_the_image_paths():
    conf = (PROJECT_ROOT / "conf" / "spark" / "k8s.conf").read_text()
    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    assert "spark.pyspark.python                           /opt/venv/bin/python" in conf
    assert "/opt/bigdl/jars/*" in conf and "mkdir -p /opt/bigdl/jars" in dockerfile
    assert "cp conf/spark/k8s.conf /opt/spark/conf/spark-defaults.conf" in dockerfile
    # SPARK_HOME in the image links to these folders of the installed pyspark: they must exist there.
    import pyspark

    linked = re.search(r"for name in ([\w ]+); do ln -s", dockerfile).group(1).split()
    assert {"bin", "jars"} <= set(linked)
    for name in linked:
        assert os.path.isdir(os.path.join(os.path.dirname(pyspark.__file__), name)), name
