"""The scheduled telemetry chain as data: each step's job (`jobs/<job>.py`) and arguments. The Airflow DAG builds its
tasks from it and a test holds the Oozie workflow to it. Standard library only: the DAG imports it from Airflow's
own environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    job: str
    args: tuple[str, ...]  # `{input}`: the raw telemetry folder; `{run}`: the run's output folder

    def arguments(self, *, input: str, run: str) -> list[str]:
        return [arg.format(input=input, run=run) for arg in self.args]


TELEMETRY_CHAIN = (
    Step("ingest", "ingest_telemetry", ("--input", "{input}", "--out", "{run}/ingest")),
    Step(
        "windows",
        "build_windows",
        ("--clean", "{run}/ingest/clean", "--failures", "{input}/failures.csv", "--out", "{run}/windows"),
    ),
    Step("train", "train_lstm", ("--windows", "{run}/windows", "--run-dir", "{run}/lstm")),
    Step(
        "evaluate",
        "evaluate_telemetry",
        ("--windows", "{run}/windows", "--run-dir", "{run}/lstm", "--failures", "{input}/failures.csv"),
    ),
    Step("score", "score_fleet", ("--clean", "{run}/ingest/clean", "--run-dir", "{run}/lstm")),
    Step("report", "report", ("--run-dir", "{run}/lstm")),
)
