"""infra/install.sh is the one installation: `make venv` and docker/Dockerfile run it on the same files.

The install itself takes minutes (measured by hand, see README); these checks run the script's own listing.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from pipelines import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "infra" / "install.sh"


def install(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def steps(*args: str, env: dict | None = None) -> list[str]:
    result = install("--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


@pytest.mark.parametrize("script", ["infra/install.sh", "infra/shell.sh", "docker/entrypoint.sh"])
def test_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(PROJECT_ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_scripts_pass_shellcheck():
    import shutil

    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    scripts = [str(PROJECT_ROOT / s) for s in ("infra/install.sh", "infra/shell.sh", "docker/entrypoint.sh")]
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_install_steps_in_order(tmp_path):
    venv = tmp_path / "venv"
    assert steps(str(venv), env={"PYTHON": "python3.11", "PIP_FLAGS": ""}) == [
        f"python3.11 -m venv {venv}",
        f"{venv}/bin/pip install --quiet -r requirements.txt",
        f"{venv}/bin/pip install --quiet --no-deps -r requirements-bigdl.txt",
        f"{venv}/bin/pip install --quiet --no-deps --no-build-isolation -e .",
    ]
    # The Docker layers: dependencies, then the project; together exactly the whole installation.
    assert steps("--only", "deps", str(venv)) + steps("--only", "project", str(venv)) == steps(str(venv))
    assert steps()[0].endswith(f"-m venv {PROJECT_ROOT}/.venv")  # the default, as `make` wants it


def test_bad_options_are_refused():
    for args in (["--only", "tests"], ["--frobnicate"]):
        result = install(*args)
        assert result.returncode == 2 and "install.sh:" in result.stderr


def test_make_and_the_dockerfile_run_the_script_on_the_files_it_reads():
    inputs = install("--inputs").stdout.split()
    assert inputs == ["requirements.txt", "requirements-bigdl.txt", "setup.py"]
    assert all((PROJECT_ROOT / name).is_file() for name in inputs)

    make = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "venv", "VENV=/tmp/venv-x"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert make.returncode == 0, make.stderr
    assert make.stdout.splitlines() == ["PYTHON=python3.11 infra/install.sh /tmp/venv-x", "touch /tmp/venv-x/.installed"]
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    prerequisites = re.search(r"^\$\(STAMP\): (.*)$", makefile, re.M).group(1).split()
    assert set(prerequisites) == {"infra/install.sh", *inputs}

    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text()
    runs = re.findall(r"^RUN PYTHON=python3\.11 infra/install\.sh (--only \S+ \S+)", dockerfile, re.M)
    assert runs == ["--only deps /opt/venv", "--only project /opt/venv"]
    deps_run = dockerfile.index("infra/install.sh --only deps")
    copied = " ".join(re.findall(r"^COPY (.*)$", dockerfile[:deps_run], re.M)).split()
    assert set(inputs) | {"infra/install.sh"} <= set(copied), "the dependency layer must copy what the script reads"
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
