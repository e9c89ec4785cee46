"""Jobs submitted to the development YARN (infra/yarn.sh) as a Hadoop user submits them, with what `make package` builds.

What a job needs is installed on HDFS first, where the Oozie workflow finds it (schedules/oozie/job.properties'
appPath): dist/ (the packed venv, the --py-files zip, conf.zip), lib/ (BigDL's jars and the project's) and
conf/spark/yarn.conf; and Spark's own jars for spark.yarn.archive. The NodeManager's containers have a clean
environment: the executors' Python, the project, BigDL and the configuration come only from what the job ships.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import PROJECT_ROOT
from pipelines.chain import evaluate_run, train_run
from pipelines.config import load_config
from pipelines.context import bigdl_jars
from pipelines.io import fs
from pipelines.models.train import latest_checkpoint
from pipelines.telemetry.generate import generate_fleet
from tests.fixtures.settings import BASELINE_ONLY

HDFS = "hdfs://127.0.0.1:19000"
APP = f"{HDFS}/apps/telemetry"  # job.properties' appPath
SPARK_ARCHIVE = f"{HDFS}/apps/spark/spark-jars.zip"
DIST = PROJECT_ROOT / "dist"
BIN = os.path.dirname(sys.executable)
SETTINGS = ["--env", "ci", "--set", "generate.devices=80", "--set", "train.hidden_size=16", "--set", "train.seed=5"]
# Trained long enough (about 2 s an epoch here) that a kill lands while training runs.
SETTINGS += ["--set", "train.epochs=12", *BASELINE_ONLY]


def jars() -> list[str]:
    """BigDL's jars and the project's, as installed in APP/lib."""
    return [f"{APP}/lib/{os.path.basename(jar)}" for jar in bigdl_jars()]


def spark_submit(mode: str) -> list[str]:
    """The spark-submit line of a job on YARN (the same master, jars, --py-files and archives as the Oozie workflow),
    sized for the development YARN's two cores."""
    return [
        f"{BIN}/spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        mode,
        "--properties-file",
        "conf/spark/yarn.conf",
        "--jars",
        ",".join(jars()),
        "--py-files",
        f"{APP}/dist/pipelines.zip",
        "--archives",
        f"{APP}/dist/pipelines-venv.tar.gz#env,{APP}/dist/conf.zip#conf",
        # the development YARN: Spark's jars installed on HDFS once, two one-core executors, small memory
        *("--conf", f"spark.yarn.archive={SPARK_ARCHIVE}"),
        *("--conf", "spark.executor.instances=2", "--conf", "spark.executor.cores=1"),
        *("--conf", "spark.executor.memory=1g", "--conf", "spark.driver.memory=1g"),
        *("--conf", "spark.yarn.am.memory=512m", "--conf", "spark.sql.shuffle.partitions=4"),
        *("--conf", "spark.yarn.maxAppAttempts=1", "--conf", "spark.executorEnv.MKL_DEBUG_CPU_TYPE=5"),
        # client mode: the driver runs here, with this venv's Python
        *(("--conf", f"spark.pyspark.driver.python={sys.executable}") if mode == "client" else ()),
    ]


def _environment(yarn_conf: str) -> dict[str, str]:
    """This process's environment without its Python settings, with the Hadoop client configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "PYTHON")) and k != "VIRTUAL_ENV"}
    return {**env, "HADOOP_CONF_DIR": yarn_conf, "YARN_CONF_DIR": yarn_conf, "PATH": f"{BIN}:{env['PATH']}"}


def _container_logs(output: str, tail: int = 3000) -> str:
    """The stdout and stderr of the application's containers, each's last TAIL characters (the NodeManager keeps
    them a minute after the application ends)."""
    found = re.findall(r"application_\d+_\d+", output)
    if not found:
        return ""
    logs = PROJECT_ROOT / ".local" / "yarn" / "nm-logs" / found[-1]
    tails = []
    for file in sorted(logs.glob("container_*/std*")):
        tails.append(f"--- {file.parent.name}/{file.name}\n{file.read_text(errors='replace')[-tail:]}")
    return "\n".join(tails)


def submit(yarn_conf: str, mode: str, script: str, *args: str, timeout: float = 600) -> str:
    command = [*spark_submit(mode), script, *args]
    started = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=_environment(yarn_conf),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    print(f"\n{mode} {os.path.basename(script)} {' '.join(args[:2])}: {time.perf_counter() - started:.0f} s")
    assert result.returncode == 0, result.stdout[-4000:] + "\n" + _container_logs(result.stdout)
    return result.stdout


def _stale(archive: Path) -> bool:
    if not archive.exists():
        return True
    names = ("setup.py", "requirements.txt", "requirements-bigdl.txt", "Makefile", "infra/copy_dists.py")
    sources = [PROJECT_ROOT / name for name in names]
    for folder in ("pipelines", "jobs", "conf"):
        sources += (PROJECT_ROOT / folder).rglob("*.*")
    return max(path.stat().st_mtime for path in sources) > archive.stat().st_mtime


def _dfs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROJECT_ROOT / "infra" / "hdfs.sh"), "dfs", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def install(folders: dict[str, list[str]]) -> None:
    """`hdfs dfs -put -f -p FILES FOLDER` of the files whose copy there differs (modification time, size): a new copy
    is a new resource for YARN, which the NodeManager downloads and unpacks again."""
    paths = [f"{folder}/{os.path.basename(file)}" for folder, files in folders.items() for file in files]
    listed = _dfs("-stat", "%n %Y %b", *paths).stdout.split("\n")
    installed = {tuple(line.split()) for line in listed if line.strip()}
    for folder, files in folders.items():
        changed = [
            file
            for file in files
            if (os.path.basename(file), str(int(os.stat(file).st_mtime) * 1000), str(os.stat(file).st_size))
            not in installed
        ]
        if changed:
            result = _dfs("-put", "-f", "-p", *changed, f"{folder}/")
            assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture(scope="module")
def installed(yarn):
    """dist/ (`make package`, again when the project changed) installed on HDFS as the README says."""
    if _stale(DIST / "pipelines-venv.tar.gz") or not (DIST / "spark-jars.zip").exists():
        subprocess.run(["make", "package"], cwd=PROJECT_ROOT, check=True, timeout=1200)
    folders = ["/apps/telemetry/dist", "/apps/telemetry/lib", "/apps/telemetry/conf/spark", "/apps/spark"]
    assert _dfs("-mkdir", "-p", *folders).returncode == 0
    install(
        {
            "/apps/telemetry/dist": ["dist/pipelines-venv.tar.gz", "dist/pipelines.zip", "dist/conf.zip"],
            "/apps/telemetry/lib": bigdl_jars(),
            "/apps/telemetry/conf/spark": ["conf/spark/yarn.conf"],
            "/apps/spark": ["dist/spark-jars.zip"],
        }
    )
    return yarn


@pytest.mark.slow
@pytest.mark.yarn
def test_containers_run_the_shipped_environment(spark, installed, tmp_path):
    """In cluster mode, the driver's container and the executors' (client mode's executors are the same)."""
    out = f"{HDFS}/tests/yarn-probe-{tmp_path.name}"
    submit(installed, "cluster", "tests/integration/yarn_probe.py", out)
    probe = json.loads(spark.read.text(out).first()[0])
    fs.delete(spark, out)
    assert probe["master"] == "yarn"
    venv = str(PROJECT_ROOT / ".venv")
    containers = str(PROJECT_ROOT / ".local" / "yarn" / "nm-local")
    for process in [*probe["executors"], probe["driver"]]:
        # ./env/bin/python: the packed venv, unpacked by the NodeManager and linked into the container's folder;
        # nothing of this repository's .venv on its paths.
        assert process["container"], process
        assert process["cwd"].startswith(containers) and process["cwd"].endswith(process["container"]), process
        assert process["python"] == os.path.join(process["cwd"], "env", "bin", "python"), process
        # (venv-pack links bin/python to the interpreter the venv was made from: the nodes need a Python 3.11 there)
        assert not process["python_file"].startswith(str(PROJECT_ROOT)), process
        assert venv not in process["path"] and venv not in process["pythonpath"], process
        for module in ("pipelines", "pyspark", "bigdl"):
            assert process[module].startswith(process["cwd"]) or process[module].startswith(containers), process
    assert probe["driver_classes"] == dict.fromkeys(probe["driver_classes"], True)


def _config():
    pairs = [SETTINGS[i + 1] for i in range(0, len(SETTINGS), 2) if SETTINGS[i] == "--set"]
    return load_config(env="ci", overrides=pairs)


@pytest.fixture(scope="module")
def chain_root(spark, installed, tmp_path_factory):
    """A fleet generated here onto HDFS, ingested and windowed on YARN in client mode."""
    root = f"{HDFS}/tests/yarn-chain-{tmp_path_factory.mktemp('yarn').name}"
    generate_fleet(spark, _config().generate, f"{root}/fleet")
    submit(
        installed,
        "client",
        "jobs/ingest_telemetry.py",
        "--input",
        f"{root}/fleet",
        "--out",
        f"{root}/ingest",
        *SETTINGS,
    )
    clean, failures = f"{root}/ingest/clean", f"{root}/fleet/failures.csv"
    submit(
        installed,
        "client",
        "jobs/build_windows.py",
        "--clean",
        clean,
        "--failures",
        failures,
        "--out",
        f"{root}/windows",
        *SETTINGS,
    )
    yield root
    fs.delete(spark, root)


def _container_pids(main_class: str) -> list[int]:
    """The JVMs of this NodeManager's containers (their folder under .local/yarn/nm-local) running MAIN_CLASS (not the
    container's launch script around them)."""
    containers = str(PROJECT_ROOT / ".local" / "yarn" / "nm-local")
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if (
                command[0].endswith("/java")
                and main_class in command
                and os.readlink(proc / "cwd").startswith(containers)
            ):
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


@pytest.mark.slow
@pytest.mark.yarn
def test_training_on_yarn_recovers_from_a_killed_executor_container(installed, chain_root, tmp_path):
    """Client mode (the driver's log here): after the first epoch's checkpoint one executor's container is killed;
    the driver reruns the stretch from its copy (bigdl.failure.retryTimes), YARN starts a new container and the run
    finishes."""
    run = f"{chain_root}/lstm-killed"
    command = [*spark_submit("client"), "jobs/train_lstm.py", "--windows", f"{chain_root}/windows", "--run-dir", run]
    job = subprocess.Popen(
        [*command, *SETTINGS],
        cwd=PROJECT_ROOT,
        env=_environment(installed),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in job.stdout:
        lines.append(line)
        if "epoch 1/12" in line:
            break
    pids = _container_pids("org.apache.spark.executor.YarnCoarseGrainedExecutorBackend")
    assert len(pids) == 2, "".join(lines)[-4000:]
    os.kill(pids[0], signal.SIGKILL)
    killed_at = time.perf_counter()
    lines.extend(job.stdout)
    assert job.wait(timeout=900) == 0, "".join(lines)[-4000:]
    log = "".join(lines)
    print(f"\nfinished {time.perf_counter() - killed_at:.0f} s after the kill")
    # Spark saw the container go; a barrier job running then fails and the driver reruns it from its copy
    # ("running it again"), one about to start waits for YARN's new container (Spark's barrier slot check).
    assert "Lost executor" in log and "Killed by external signal" in log, log[-4000:]
    assert "running it again" in log or "requires 2 slots" in log, log[-4000:]
    assert "trained 12 epochs" in log, log[-4000:]


@pytest.mark.slow
@pytest.mark.yarn
def test_telemetry_chain_on_yarn_survives_a_killed_driver_and_matches_local(spark, installed, chain_root, tmp_path):
    """ingest and windows in client mode (chain_root); train in cluster mode with its checkpoints on HDFS, its driver's
    container (the ApplicationMaster) killed after the first checkpoint: the application fails
    (spark.yarn.maxAppAttempts=1), and the same line with --resume continues from the checkpoint; evaluate in cluster
    mode. Then the same windows trained and evaluated on local[2]."""
    root, config = chain_root, _config()
    run = f"{root}/lstm"
    args = ["jobs/train_lstm.py", "--windows", f"{root}/windows", "--run-dir", run, *SETTINGS]
    job = subprocess.Popen(
        [*spark_submit("cluster"), *args],
        cwd=PROJECT_ROOT,
        env=_environment(installed),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 600
    # a complete snapshot (the model and its optimiser's state), as --resume looks for it
    while latest_checkpoint(spark, f"{run}/checkpoints") is None:
        assert job.poll() is None and time.monotonic() < deadline, "no checkpoint before the job ended"
        time.sleep(2)
    drivers = _container_pids("org.apache.spark.deploy.yarn.ApplicationMaster")
    assert len(drivers) == 1
    os.kill(drivers[0], signal.SIGKILL)
    output, _ = job.communicate(timeout=300)
    assert job.returncode != 0, output[-3000:]
    assert not fs.exists(spark, f"{run}/training.json")

    resumed = submit(installed, "cluster", *args[:1], "--resume", *args[1:])
    assert "resuming from" in _container_logs(resumed, tail=10**7)
    submit(
        installed, "cluster", "jobs/evaluate_telemetry.py", "--windows", f"{root}/windows", "--run-dir", run, *SETTINGS
    )
    counts = fs.read_json(spark, f"{root}/ingest/counts.json")
    assert counts["read"] == counts["clean"] + counts["quarantined"] > 0
    assert fs.read_json(spark, f"{run}/training.json")["epochs"] == 12
    on_yarn = fs.read_json(spark, f"{run}/metrics.json")["test"]

    local_run = str(tmp_path / "local")
    train_run(spark, config, windows=f"{root}/windows", run_dir=local_run)
    local = evaluate_run(spark, config, windows=f"{root}/windows", run_dir=local_run)["test"]
    print(f"\nYARN test {on_yarn}\nlocal[2] test {local}")
    assert on_yarn["count"] == local["count"] > 0
    # Both learn (chance is 0.5) from the same initial weights; YARN's two one-core executors are no worse than
    # local[2] beyond the spread of runs (the same spread as the standalone cluster's test: the data's order is
    # not the same on other partitions, and the test split has few failing devices).
    assert on_yarn["roc_auc"] > 0.6 and local["roc_auc"] > 0.6
    assert on_yarn["roc_auc"] > local["roc_auc"] - 0.15


def _options(line: list[str]) -> dict[str, str]:
    """spark-submit's options of a command line (the last value of each; --conf left out)."""
    options, words = {}, iter(line)
    for word in words:
        if word.startswith("--") and word != "--conf":
            options[word] = next(words)
    return options


def _resolve(value: str, properties: dict[str, str]) -> str:
    for _ in range(5):
        value = re.sub(r"\$\{([\w.]+)\}", lambda m: properties.get(m.group(1), m.group(0)), value)
    return value


def test_the_oozie_workflow_submits_as_the_tested_lines():
    """workflow.xml's Spark actions with job.properties: the master, deploy mode, properties file, jars, --py-files
    and archives of spark_submit("cluster"), with appPath for the folder the tests install into."""
    from xml.etree import ElementTree

    oozie = PROJECT_ROOT / "schedules" / "oozie"
    pairs = (line.split("=", 1) for line in (oozie / "job.properties").read_text().splitlines() if "=" in line)
    properties = {key.strip(): value.strip() for key, value in pairs if not key.lstrip().startswith("#")}
    properties["appPath"] = APP
    ns = {"wf": "uri:oozie:workflow:1.0", "spark": "uri:oozie:spark-action:1.0"}
    root = ElementTree.parse(oozie / "workflow.xml").getroot()
    defaults = {
        p.find("wf:name", ns).text: p.findtext("wf:value", None, ns) for p in root.iter(f"{{{ns['wf']}}}property")
    }
    tested = _options(spark_submit("cluster"))
    actions = root.findall("wf:action/spark:spark", ns)
    assert len(actions) == 6
    for action in actions:
        master = _resolve(action.findtext("spark:master", None, ns), properties)
        mode = _resolve(action.findtext("spark:mode", None, ns), properties)
        assert (master, mode) == ("yarn", "cluster") == (defaults["master"], defaults["mode"])
        opts = _options(_resolve(action.findtext("spark:spark-opts", None, ns), properties).split())
        # Oozie ships conf/spark/yarn.conf with <file> and names it by its link.
        files = [_resolve(f.text, properties) for f in action.findall("spark:file", ns)]
        assert files == [f"{APP}/conf/spark/yarn.conf#yarn.conf"]
        assert opts.pop("--properties-file") == "yarn.conf" == os.path.basename(tested.pop("--properties-file"))
        assert tested.pop("--master") == master and tested.pop("--deploy-mode") == mode
        assert opts == tested
        tested = _options(spark_submit("cluster"))
