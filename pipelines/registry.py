"""The scheduled telemetry chain as data: each step's job (`jobs/<job>.py`) and its paths. The Airflow DAG builds its
tasks from it, `jobs/demo.py` runs it in one session (each step's function is `pipelines.chain.<name>_run`, taking
the same paths as keywords), and a test holds the Oozie workflow to it. Standard library only: the DAG imports it
from Airflow's own environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    job: str
    paths: tuple[tuple[str, str], ...]  # (keyword, template): `{input}` the raw telemetry folder, `{run}` the run's

    def keywords(self, *, input: str, run: str) -> dict[str, str]:
        """The paths as keywords of the step's function."""
        return {key: template.format(input=input, run=run) for key, template in self.paths}

    def arguments(self, *, input: str, run: str) -> list[str]:
        """The paths as the job's command-line arguments (`run_dir` -> `--run-dir`)."""
        pairs = self.keywords(input=input, run=run).items()
        return [arg for key, value in pairs for arg in ("--" + key.replace("_", "-"), value)]


TELEMETRY_CHAIN = (
    Step("ingest", "ingest_telemetry", (("input", "{input}"), ("out", "{run}/ingest"))),
    Step(
        "windows",
        "build_windows",
        (("clean", "{run}/ingest/clean"), ("failures", "{input}/failures.csv"), ("out", "{run}/windows")),
    ),
    Step("train", "train_lstm", (("windows", "{run}/windows"), ("run_dir", "{run}/lstm"))),
    Step(
        "evaluate",
        "evaluate_telemetry",
        (("windows", "{run}/windows"), ("run_dir", "{run}/lstm"), ("failures", "{input}/failures.csv")),
    ),
    Step("score", "score_fleet", (("clean", "{run}/ingest/clean"), ("run_dir", "{run}/lstm"))),
    Step("report", "report", (("run_dir", "{run}/lstm"),)),
)
