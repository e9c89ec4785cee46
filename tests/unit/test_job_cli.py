"""Every job's --help and --dry-run, run in-process through pipelines.cli.run: no JVM may start."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import subprocess
import sys

import pytest
import yaml
from pyspark import SparkContext

from pipelines import PROJECT_ROOT, context
from pipelines.cli import EXIT_BAD_CONFIG, run
from pipelines.config import PipelineConfig

JOBS = sorted(p.stem for p in (PROJECT_ROOT / "jobs").glob("*.py") if p.stem != "__init__")


def job(name: str):
    """The job module, its parser (module-level or built) and its main."""
    module = importlib.import_module(f"jobs.{name}")
    parser = module.build_parser() if hasattr(module, "build_parser") else module.parser
    return module, parser


def path_argv(parser: argparse.ArgumentParser, root) -> list[str]:
    """A path under `root` for every required option, positional argument and declared input or output."""
    declared = {spec.dest for spec in parser.paths}
    argv = []
    for action in parser._actions:
        if action.option_strings and (action.required or action.dest in declared):
            argv += [action.option_strings[0], str(root / action.dest)]
        elif not action.option_strings and action.dest != "help":
            argv.append(str(root / action.dest))
    return argv


def test_every_job_is_covered():
    assert len(JOBS) >= 18 and "demo" in JOBS and "train_lstm" in JOBS


@pytest.mark.parametrize("name", JOBS)
def test_help_lists_options_and_the_config_it_uses(name, capsys):
    module, parser = job(name)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        for flag in action.option_strings:
            assert flag in text, f"{name}: --help does not list {flag}"
    assert "--dry-run" in text and "--env" in text and "--set" in text
    # Every config section the job's own code reads has its defaults (or its name) in the help.
    source = (PROJECT_ROOT / "jobs" / f"{name}.py").read_text()
    sections = {f.name for f in dataclasses.fields(PipelineConfig)}
    for section in sorted(set(re.findall(r"\bconfig\.([a-z_]+)", source)) & sections):
        assert re.search(rf"\b{section}[.:]", text), f"{name}: --help does not show config section {section!r}"


@pytest.mark.parametrize("name", JOBS)
def test_dry_run_plans_without_starting_spark(name, tmp_path, capfd, monkeypatch):
    module, parser = job(name)
    argv = path_argv(parser, tmp_path) + ["--dry-run", "--env", "ci"]

    asked = []

    def no_spark(*args, **kwargs):
        asked.append(args)
        raise RuntimeError("no Spark in a dry run")

    monkeypatch.setattr(module, "get_or_create", no_spark, raising=False)
    monkeypatch.setattr(context, "get_or_create", no_spark)
    # Every input is missing, so the dry run says the job would fail (exit 1); a job without inputs would run.
    before = SparkContext._active_spark_context  # the suite's shared session, when an earlier test made it
    code = run(module.main, parser, argv)
    assert not asked and SparkContext._active_spark_context is before, f"{name} --dry-run started Spark"
    plan = yaml.safe_load(capfd.readouterr().out)
    assert plan["job"] == name
    assert plan["config"]["output"]["if_exists"] == "replace"
    assert plan["config"]["generate"]["devices"] == 24  # conf/ci overlaid on conf/base (200)
    for entry in plan["inputs"]:
        assert entry["exists"] is False and entry["uri"].startswith(str(tmp_path))
    assert code == (1 if plan["inputs"] else 0)
    if name != "inspect_tf":  # the one job that writes nothing
        assert plan["outputs"], f"{name} declares no outputs"
    for entry in plan["outputs"]:
        assert entry["action"] == "create" and entry["uri"].startswith(str(tmp_path)), entry


def test_dry_run_says_what_happens_to_existing_outputs(tmp_path, capfd):
    module, parser = job("train_lstm")
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "training.json").write_text("{}")
    windows = tmp_path / "windows"
    windows.mkdir()
    argv = ["--windows", str(windows), "--run-dir", str(run_dir), "--dry-run"]
    assert run(module.main, parser, argv) == 0
    plan = yaml.safe_load(capfd.readouterr().out)
    assert plan["inputs"] == [{"option": "--windows", "uri": str(windows), "exists": True}]
    actions = {e["uri"].removeprefix(f"{run_dir}/"): e["action"] for e in plan["outputs"]}
    assert actions == {
        "checkpoints": "add",
        "summaries": "create",
        "members": "create",  # an ensemble's (train.members > 1)
        "model/lstm.bigdl": "create",
        "training.json": "overwrite",
    }

    module, parser = job("build_windows")
    out = tmp_path / "windows"
    (tmp_path / "failures.csv").write_text("")
    for policy, action, code in (("replace", "replace", 0), ("refuse", "refuse", 1)):
        argv = [
            "--clean",
            str(run_dir),
            "--failures",
            str(tmp_path / "failures.csv"),
            "--out",
            str(out),
            "--dry-run",
            "--set",
            f"output.if_exists={policy}",
        ]
        assert run(module.main, parser, argv) == code
        plan = yaml.safe_load(capfd.readouterr().out)
        assert plan["outputs"] == [
            {"option": "--out", "uri": str(out), "exists": True, "mode": "atomic", "action": action}
        ]


def test_dry_run_resolves_defaults_and_leaves_remote_paths_unchecked(tmp_path, capfd):
    module, parser = job("score_fleet")
    argv = [
        "--clean",
        "hdfs:///ingest/clean",
        "--run-dir",
        str(tmp_path),
        "--dry-run",
        "--set",
        "alerting.calibration=platt",
    ]
    assert run(module.main, parser, argv) == 1  # the run folder has no model yet
    plan = yaml.safe_load(capfd.readouterr().out)
    assert plan["config"]["alerting"]["calibration"] == "platt"
    assert {"option": "--clean", "uri": "hdfs:///ingest/clean", "exists": None} in plan["inputs"]
    assert {"option": "--policy", "uri": f"{tmp_path}/alerting/policy.json", "exists": False} in plan["inputs"]
    assert [e["uri"] for e in plan["outputs"]] == [f"{tmp_path}/risk"]


@pytest.mark.parametrize("override", ["train.epochs=many", "train.no_such_key=1", "output.if_exists=sometimes"])
def test_dry_run_with_a_bad_setting_exits_2_with_one_line(override, tmp_path):
    argv = ["--windows", str(tmp_path), "--run-dir", str(tmp_path), "--dry-run", "--set", override]
    result = subprocess.run(
        [sys.executable, "-m", "jobs.train_lstm", *argv], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == EXIT_BAD_CONFIG
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "configuration error" in lines[0] and override.split("=")[0] in lines[0], lines
