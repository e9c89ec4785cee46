"""schedules/oozie: workflow.xml and coordinator.xml validate against Oozie's own XSDs (from the oozie-client jar),
a broken copy does not, and job.properties defines every ${variable} they use."""

import re
import subprocess
from xml.etree import ElementTree

from pipelines import PROJECT_ROOT
from pipelines.registry import TELEMETRY_CHAIN

OOZIE = PROJECT_ROOT / "schedules" / "oozie"
VALIDATE = str(OOZIE / "validate.sh")
# ${name} is a variable; ${wf:...}, ${coord:...} and other expressions with ':' or '(' are EL functions.
VARIABLE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def _validate(*files) -> subprocess.CompletedProcess:
    # The first run fetches the jar with Maven (cached in .local/oozie).
    return subprocess.run([VALIDATE, *map(str, files)], capture_output=True, text=True, timeout=600)


def test_workflow_and_coordinator_match_their_schemas():
    result = _validate()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # The workflow is checked against oozie-workflow-1.0.xsd together with spark-action-1.0.xsd.
    assert any(line.endswith("workflow.xml: valid (2 schemas)") for line in lines), lines
    assert any(line.endswith("coordinator.xml: valid (1 schemas)") for line in lines), lines


def test_broken_copies_fail_with_the_reason(tmp_path):
    workflow = (OOZIE / "workflow.xml").read_text()
    no_master = tmp_path / "no_master.xml"  # <master> is required in a Spark action
    no_master.write_text(workflow.replace("<master>${master}</master>", "", 1))
    wrong_version = tmp_path / "wrong_version.xml"
    wrong_version.write_text(workflow.replace("uri:oozie:spark-action:1.0", "uri:oozie:spark-action:7.0", 1))
    coordinator = (OOZIE / "coordinator.xml").read_text()
    no_frequency = tmp_path / "no_frequency.xml"
    no_frequency.write_text(coordinator.replace('frequency="${coord:days(1)}"', "", 1))

    truncated = tmp_path / "truncated.xml"
    truncated.write_text(workflow[: len(workflow) // 2])

    result = _validate(no_master, wrong_version, no_frequency, truncated)
    assert result.returncode == 1
    errors = result.stdout.splitlines()
    assert [e for e in errors if e.startswith(f"{no_master}:") and "mode" in e and "master" in e]
    assert f"{wrong_version}: no schema in oozie-client-5.2.1.jar for namespace 'uri:oozie:spark-action:7.0'" in errors
    assert [e for e in errors if e.startswith(f"{no_frequency}:") and "'frequency'" in e]
    assert [e for e in errors if e.startswith(f"{truncated}:") and "must start and end" in e]
    assert not [e for e in errors if "valid (" in e]


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def undefined_variables(workflow: str, coordinator: str, properties: str) -> set[str]:
    """${variables} of the three files that neither job.properties nor the coordinator's workflow configuration set."""
    defined = set(_properties(properties))
    passed = set(re.findall(r"<name>([^<]+)</name>", coordinator.split("<configuration>", 1)[-1]))
    used_by_coordinator = set(VARIABLE.findall(coordinator)) | set(VARIABLE.findall(properties))
    return (used_by_coordinator - defined) | (set(VARIABLE.findall(workflow)) - defined - passed)


def test_job_properties_define_every_variable():
    texts = [(OOZIE / name).read_text() for name in ("workflow.xml", "coordinator.xml", "job.properties")]
    assert undefined_variables(*texts) == set()
    workflow, coordinator, properties = texts
    assert "${input}" in workflow and "${bigdlJars}" in properties and "${master}" in workflow
    props = _properties(properties)
    assert props["oozie.coord.application.path"] == "${appPath}"
    # Each workflow parameter is declared and set.
    declared = set(re.findall(r"<property><name>(\w+)</name>", workflow.split("</parameters>")[0]))
    assert declared and declared <= set(props) | {"runRoot"}
    # The check itself catches a missing one.
    assert undefined_variables(workflow.replace("${input}", "${inputt}", 1), coordinator, properties) == {"inputt"}
    assert undefined_variables(workflow, coordinator, properties.replace("\nmaster=", "\n#master=")) == {"master"}


def test_the_workflow_runs_the_registrys_chain_in_order():
    """Follow the transitions from <start>: the registry's steps in its order, each with its job and arguments
    (plus --env), each failure to the kill node."""
    ns = {"wf": "uri:oozie:workflow:1.0", "spark": "uri:oozie:spark-action:1.0"}
    root = ElementTree.parse(OOZIE / "workflow.xml").getroot()
    actions = {a.get("name"): a for a in root.findall("wf:action", ns)}
    steps, node = [], root.find("wf:start", ns).get("to")
    while node in actions:
        action = actions[node]
        spark = action.find("spark:spark", ns)
        steps.append(
            (
                node,
                spark.find("spark:jar", ns).text.rsplit("/", 1)[-1],
                [arg.text for arg in spark.findall("spark:arg", ns)],
            )
        )
        assert action.find("wf:error", ns).get("to") == root.find("wf:kill", ns).get("name")
        node = action.find("wf:ok", ns).get("to")
    assert node == root.find("wf:end", ns).get("name")
    assert steps == [
        (step.name, f"{step.job}.py", [*step.arguments(input="${input}", run="${runRoot}"), "--env", "${configEnv}"])
        for step in TELEMETRY_CHAIN
    ]
    assert all((PROJECT_ROOT / "jobs" / f"{step.job}.py").exists() for step in TELEMETRY_CHAIN)
