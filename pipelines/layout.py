"""A run folder's layout, named in one place: every job and report finds a run's parts here (any Hadoop URI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pyspark.sql import SparkSession

from pipelines.io import fs


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder. The class names are relative (for the jobs' declared outputs); the
    properties are the run's URIs."""

    root: str

    MODEL: ClassVar[str] = "model/lstm.bigdl"
    TF_FINETUNED: ClassVar[str] = "model/tf_finetuned.bigdl"
    FINETUNE_RECORD: ClassVar[str] = "finetune.json"
    CHECKPOINTS: ClassVar[str] = "checkpoints"
    SUMMARIES: ClassVar[str] = "summaries"
    MEMBERS: ClassVar[str] = "members"  # an ensemble's members, each a run folder of its own
    TRAINING: ClassVar[str] = "training.json"
    METRICS: ClassVar[str] = "metrics.json"
    PREDICTIONS: ClassVar[str] = "predictions"
    ALERTING: ClassVar[str] = "alerting"
    POLICY: ClassVar[str] = "alerting/policy.json"
    LEAD_TIMES: ClassVar[str] = "alerting/lead_times.json"
    RISK: ClassVar[str] = "risk"
    RISK_SUMMARY: ClassVar[str] = "risk/summary.json"
    REPORT: ClassVar[str] = "report"

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def resolve(self, path: str) -> str:
        """`path` itself when it is absolute (a URI or /...), else that path of the run."""
        return path if "://" in path or path.startswith("/") else self.path(path)

    @property
    def model(self) -> str:
        return self.path(self.MODEL)

    @property
    def tf_finetuned(self) -> str:
        return self.path(self.TF_FINETUNED)

    @property
    def checkpoints(self) -> str:
        return self.path(self.CHECKPOINTS)

    @property
    def summaries(self) -> str:
        return self.path(self.SUMMARIES)

    @property
    def training(self) -> str:
        return self.path(self.TRAINING)

    @property
    def metrics(self) -> str:
        return self.path(self.METRICS)

    @property
    def predictions(self) -> str:
        return self.path(self.PREDICTIONS)

    @property
    def alerting(self) -> str:
        return self.path(self.ALERTING)

    @property
    def policy(self) -> str:
        return self.path(self.POLICY)

    @property
    def lead_times(self) -> str:
        return self.path(self.LEAD_TIMES)

    @property
    def risk(self) -> str:
        return self.path(self.RISK)

    @property
    def risk_summary(self) -> str:
        return self.path(self.RISK_SUMMARY)

    @property
    def report(self) -> str:
        return self.path(self.REPORT)

    def read_metrics(self, spark: SparkSession) -> dict[str, Any]:
        return fs.read_json(spark, self.metrics) if fs.exists(spark, self.metrics) else {}

    def merge_metrics(self, spark: SparkSession, blocks: dict[str, Any]) -> dict[str, Any]:
        """metrics.json with `blocks` merged in (top-level keys replaced); the merged figures."""
        merged = self.read_metrics(spark)
        merged.update(blocks)
        fs.write_json(spark, self.metrics, merged)
        return merged
