"""Probability calibration fitted on the cluster, and reliability curves.

A model trained on down-sampled negatives (or simply over-confident) gives scores that rank devices well but are
not probabilities. A `Calibrator` maps scores to probabilities, fitted on the validation split's predictions:

- `platt`: p = sigmoid(a * logit(score) + b), a logistic regression on the score's logit with Platt's smoothed
  targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2), so it stays finite on separable data and with few positives; fitted
  by Newton's method on counts of finely rounded logits aggregated on the cluster. Strictly increasing in the score:
  it never reorders devices.
- `isotonic`: the non-decreasing step-wise-linear fit of Spark ML's `IsotonicRegression` (pool adjacent violators,
  distributed). Flexible, but with few positives it overfits and makes ties.
- `none`: the score itself.

A fitted calibrator is a few numbers (JSON, `to_dict`), applied with a Spark column (`column`) or on NumPy arrays
(`predict`), so scoring jobs and reports use exactly the fitted mapping.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasLabelCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

METHODS = ("platt", "isotonic", "none")
_EPS = 1e-7


@dataclass(frozen=True)
class Calibrator:
    """A fitted score -> probability mapping (see the module docstring)."""

    method: str
    a: float = 1.0
    b: float = 0.0
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()
    fitted_on: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {METHODS}, not {self.method!r}")
        if self.method == "isotonic" and (not self.knots_x or len(self.knots_x) != len(self.knots_y)):
            raise ValueError("an isotonic calibrator needs knots_x and knots_y of one length")

    def predict(self, scores: Any) -> np.ndarray:
        """Probabilities for an array of scores."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            return _sigmoid(self.a * _logit(s) + self.b)
        if self.method == "isotonic":
            return np.interp(s, np.asarray(self.knots_x), np.asarray(self.knots_y))
        return s.copy()

    def column(self, score: Column | str) -> Column:
        """The probability as a Spark column expression of `score`."""
        s = F.col(score) if isinstance(score, str) else score
        if self.method == "platt":
            # greatest() skips nulls, so an unscored device must be kept null explicitly.
            clipped = F.least(F.greatest(s.cast("double"), F.lit(_EPS)), F.lit(1 - _EPS))
            z = F.lit(self.a) * F.log(clipped / (F.lit(1.0) - clipped)) + F.lit(self.b)
            return F.when(s.isNotNull(), F.lit(1.0) / (F.lit(1.0) + F.exp(-z)))
        if self.method == "isotonic":
            return _interp_udf(list(self.knots_x), list(self.knots_y))(s.cast("double"))
        return s.cast("double")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "fitted_on": dict(self.fitted_on)}
        if self.method == "platt":
            out.update(a=self.a, b=self.b)
        elif self.method == "isotonic":
            out.update(knots_x=list(self.knots_x), knots_y=list(self.knots_y))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        return cls(
            method=data["method"],
            a=float(data.get("a", 1.0)),
            b=float(data.get("b", 0.0)),
            knots_x=tuple(float(v) for v in data.get("knots_x", ())),
            knots_y=tuple(float(v) for v in data.get("knots_y", ())),
            fitted_on={k: int(v) for k, v in data.get("fitted_on", {}).items()},
        )


def _logit(s: np.ndarray) -> np.ndarray:
    c = np.clip(s, _EPS, 1 - _EPS)
    return np.log(c / (1 - c))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _interp_udf(xs: list[float], ys: list[float]):
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)

    @F.pandas_udf("double")  # type: ignore[call-overload]  # pyspark's stubs lack the type-hint form
    def interp(s: pd.Series) -> pd.Series:
        return pd.Series(np.interp(s.to_numpy(dtype=np.float64), x, y))

    return interp


def fit_calibrator(
    predictions: DataFrame, *, method: str, label_col: str = "label", score_col: str = "score"
) -> Calibrator:
    """Fit `method` on `predictions` (label 0/1, score) on the cluster."""
    group = F.lit("")
    return fit_calibrators(predictions, method=method, group=group, label_col=label_col, score_col=score_col)[""]


def fit_calibrators(
    predictions: DataFrame,
    *,
    method: str,
    group: Column | str = "model",
    label_col: str = "label",
    score_col: str = "score",
) -> dict[str, Calibrator]:
    """A calibrator per value of `group` (a model's name), all fitted in the same few Spark jobs: the counts in one,
    Platt's in one more (see `_fit_platt`); isotonic fits Spark ML's model per group."""
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, not {method!r}")
    data = predictions.select(
        (F.col(group) if isinstance(group, str) else group).cast("string").alias("g"),
        F.col(label_col).cast("int").alias("label"),
        F.col(score_col).cast("double").alias("score"),
    )
    counts = {
        r["g"]: (int(r["n"]), int(r["p"] or 0))
        for r in data.groupBy("g").agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("p")).collect()
    }
    if not counts:
        raise ValueError("cannot fit a calibration on empty predictions")
    for name, (n, p) in counts.items():
        if p in (0, n):
            log.warning(
                "calibration data of %s hold one class only (%d positives of %d); the fit is a prior, not a mapping",
                name or "the model",
                p,
                n,
            )
    fitted_on = {name: {"rows": n, "positives": p} for name, (n, p) in counts.items()}
    if method == "none":
        return {name: Calibrator("none", fitted_on=fitted_on[name]) for name in counts}
    if method == "platt":
        out = {}
        for name, (a, b) in _fit_platt(data, counts).items():
            n, p = counts[name]
            log.info("Platt calibration on %d predictions (%d positive): a=%.4f, b=%.4f", n, p, a, b)
            out[name] = Calibrator("platt", a=a, b=b, fitted_on=fitted_on[name])
        return out
    out = {}
    for name in counts:
        xs, ys = _fit_isotonic(data.where(F.col("g") == name))
        log.info("isotonic calibration on %d predictions (%d positive): %d knots", *counts[name], len(xs))
        out[name] = Calibrator("isotonic", knots_x=tuple(xs), knots_y=tuple(ys), fitted_on=fitted_on[name])
    return out


PLATT_GRID = 1e-3  # the score's logit is rounded to this step for Platt's fit (at most 2 * 32,000 rows per group)


def _fit_platt(data: DataFrame, counts: dict[str, tuple[int, int]]) -> dict[str, tuple[float, float]]:
    """(a, b) per group `g` of `data` (g, label, score): Platt's fit with his smoothed targets, by Newton's method
    with step halving on the driver, over the counts of (label, logit rounded to `PLATT_GRID`) from one Spark job.
    The rounding moves a logit by at most half a step, far below what the fit resolves."""
    clipped = F.least(F.greatest(F.col("score"), F.lit(_EPS)), F.lit(1 - _EPS))
    logit = F.round(F.log(clipped / (F.lit(1.0) - clipped)) / F.lit(PLATT_GRID)).cast("long")
    by_group: dict[str, list[Row]] = {name: [] for name in counts}
    for r in data.groupBy("g", "label", logit.alias("x")).agg(F.count(F.lit(1)).alias("n")).collect():
        by_group[r["g"]].append(r)
    out = {}
    for name, (n, p) in counts.items():
        mine = by_group[name]
        x = np.array([r["x"] * PLATT_GRID for r in mine])
        weight = np.array([r["n"] for r in mine], dtype=np.float64)
        target = np.where(np.array([r["label"] for r in mine]) == 1, (p + 1.0) / (p + 2.0), 1.0 / (n - p + 2.0))
        out[name] = _newton_platt(x, target, weight)
    return out


def _newton_platt(x: np.ndarray, target: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """argmin over (a, b) of the weighted cross-entropy of sigmoid(a * x + b) against the soft `target`."""

    def loss(theta: np.ndarray) -> float:
        z = theta[0] * x + theta[1]
        return float(np.sum(weight * (np.logaddexp(0.0, z) - target * z)))

    prior = float(np.sum(weight * target) / np.sum(weight))
    theta = np.array([0.0, math.log(prior / (1.0 - prior))])
    design = np.stack([x, np.ones_like(x)], axis=1)
    current = loss(theta)
    for _ in range(100):
        p = _sigmoid(design @ theta)
        gradient = design.T @ (weight * (p - target))
        hessian = design.T @ (design * (weight * p * (1.0 - p))[:, None]) + 1e-12 * np.sum(weight) * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-10 and loss(theta - scale * step) > current:
            scale /= 2
        if scale <= 1e-10:
            break
        theta = theta - scale * step
        previous, current = current, loss(theta)
        if previous - current <= 1e-12 * max(abs(current), 1.0):
            break
    return float(theta[0]), float(theta[1])


def _fit_isotonic(data: DataFrame) -> tuple[list[float], list[float]]:
    from pyspark.ml.regression import IsotonicRegression

    model = IsotonicRegression(featuresCol="score", labelCol="label", isotonic=True).fit(
        data.withColumn("label", F.col("label").cast("double"))
    )
    xs = [float(v) for v in model.boundaries.toArray()]
    ys = [float(v) for v in model.predictions.toArray()]
    return xs, ys


def calibrate(
    df: DataFrame, calibrator: Calibrator, *, score_col: str = "score", out_col: str = "probability"
) -> DataFrame:
    """`df` with `out_col`, the calibrated probability of `score_col`."""
    return df.withColumn(out_col, calibrator.column(score_col))


def calibrated_column(
    calibrators: dict[str, Calibrator], *, score_col: str = "score", model_col: str = "model"
) -> Column:
    """The calibrated probability of `score_col` by each row's model: `calibrators[model]` (null for other models)."""
    probability: Column | None = None
    for name, calibrator in calibrators.items():
        is_model = F.col(model_col) == name
        mapped = calibrator.column(score_col)
        probability = F.when(is_model, mapped) if probability is None else probability.when(is_model, mapped)
    if probability is None:
        raise ValueError("no calibrators given")
    return probability


LOG_BINS, LOG_LOW = 24, 1e-6  # the log profile's bins of [LOG_LOW, 1]


def reliability_profiles(
    predictions: DataFrame,
    prob_cols: Sequence[str],
    *,
    label_col: str = "label",
    bins: int = 10,
    log_bins: int = LOG_BINS,
    low: float = LOG_LOW,
    extra: dict[str, Column] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, list[Row]]]:
    """Per column of `prob_cols`, in one Spark job: its reliability curve on `bins` equal-width bins of [0, 1]
    (`curve`: per non-empty bin {bin, lower, upper, count, mean_predicted, observed_rate}), the expected calibration
    error (`ece`: the count-weighted mean |observed - predicted|, 0 on the diagonal) and Brier score; and its log
    profile: counts, positives and mean probability on `log_bins` log-spaced bins of [low, 1] (probabilities below
    `low` in the first), where rare events live. For each of `extra` (name: an integer column), the rows' count and
    positives per value of that column (rows with `bin`, `n`, `pos`): a threshold's confusion matrix from a 0/1
    column, say. One row per bin reaches the driver."""
    if bins < 1 or log_bins < 1:
        raise ValueError("bins must be at least 1")
    width = -math.log10(low) / log_bins
    y = F.col(label_col).cast("double")
    binnings: dict[str, tuple[Column, Column]] = {}
    for col in prob_cols:
        p = F.col(col).cast("double")
        binnings[f"equal:{col}"] = (p, F.least(F.floor(p * bins), F.lit(bins - 1)))
        position = (F.log10(F.greatest(p, F.lit(low))) - F.lit(math.log10(low))) / F.lit(width)
        binnings[f"log:{col}"] = (p, F.least(F.floor(position), F.lit(log_bins - 1)))
    for name, column in (extra or {}).items():
        binnings[f"extra:{name}"] = (F.lit(None).cast("double"), column)  # counts only
    entries = F.array(
        *[F.struct(F.lit(k).alias("k"), b.cast("int").alias("bin"), p.alias("p")) for k, (p, b) in binnings.items()]
    )
    rows = (
        predictions.select(F.explode(entries).alias("e"), y.alias("y"))
        .select("e.*", "y")
        .where(F.col("bin").isNotNull())
        .groupBy("k", "bin")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("y").alias("pos"),
            F.avg("p").alias("mp"),
            F.sum((F.col("p") - F.col("y")) ** 2).alias("se"),
        )
        .collect()
    )
    grouped: dict[str, list[Row]] = {k: [] for k in binnings}
    for r in sorted(rows, key=lambda r: r["bin"]):
        grouped[r["k"]].append(r)
    curves = {col: _reliability_curve(grouped[f"equal:{col}"], bins) for col in prob_cols}
    profiles = {col: _log_profile_rows(grouped[f"log:{col}"], low, width) for col in prob_cols}
    return curves, profiles, {name: grouped[f"extra:{name}"] for name in extra or {}}


def _reliability_curve(rows: list[Row], bins: int) -> dict[str, Any]:
    n = sum(int(r["n"]) for r in rows)
    if n == 0:
        raise ValueError("reliability: the predictions are empty")
    curve = [
        {
            "bin": int(r["bin"]),
            "lower": r["bin"] / bins,
            "upper": (r["bin"] + 1) / bins,
            "count": int(r["n"]),
            "mean_predicted": float(r["mp"]),
            "observed_rate": float(r["pos"]) / int(r["n"]),
        }
        for r in rows
    ]
    return {
        "bins": bins,
        "count": n,
        "ece": expected_calibration_error(curve),
        "brier": sum(float(r["se"]) for r in rows) / n,
        "curve": curve,
    }


def expected_calibration_error(curve: list[dict[str, Any]]) -> float:
    """Count-weighted mean distance of a reliability curve from the diagonal."""
    total = sum(c["count"] for c in curve)
    if total == 0:
        return 0.0
    return sum(c["count"] * abs(c["observed_rate"] - c["mean_predicted"]) for c in curve) / total


def _log_profile_rows(rows: list[Row], low: float, width: float) -> list[dict[str, Any]]:
    return [
        {
            "lower": 10 ** (math.log10(low) + r["bin"] * width),
            "upper": 10 ** (math.log10(low) + (r["bin"] + 1) * width),
            "count": int(r["n"]),
            "positives": int(r["pos"] or 0),
            "mean_predicted": float(r["mp"]),
        }
        for r in rows
    ]


class _CalibrationParams(HasLabelCol):
    scoreCol = Param(Params._dummy(), "scoreCol", "column of the scores to calibrate", TypeConverters.toString)
    probabilityCol = Param(
        Params._dummy(), "probabilityCol", "column for the calibrated probability", TypeConverters.toString
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(labelCol="label", scoreCol="score", probabilityCol="calibrated")


class ScoreCalibrator(Estimator, _CalibrationParams, DefaultParamsReadable, DefaultParamsWritable):
    """`fit_calibrator` as a Spark ML Estimator: fitted on the rows flagged by `validationIndicatorCol` (all rows
    when it is empty), so that it can follow a model fitted on the other rows in one Pipeline."""

    method = Param(Params._dummy(), "method", f"one of {', '.join(METHODS)}", TypeConverters.toString)
    validationIndicatorCol = Param(
        Params._dummy(),
        "validationIndicatorCol",
        "boolean column: true for the rows to fit on ('' for all)",
        TypeConverters.toString,
    )

    def __init__(self, **params: Any) -> None:
        super().__init__()
        self._setDefault(method="platt", validationIndicatorCol="")
        self._set(**params)

    def _fit(self, dataset: DataFrame) -> CalibrationModel:
        flag = self.getOrDefault("validationIndicatorCol")
        rows = dataset.where(F.col(flag)) if flag else dataset
        fitted = fit_calibrator(
            rows,
            method=self.getOrDefault("method"),
            label_col=self.getLabelCol(),
            score_col=self.getOrDefault("scoreCol"),
        )
        return CalibrationModel(
            calibrator=json.dumps(fitted.to_dict()),
            **{name: self.getOrDefault(name) for name in ("labelCol", "scoreCol", "probabilityCol")},
        )


class CalibrationModel(Model, _CalibrationParams, DefaultParamsReadable, DefaultParamsWritable):
    """A fitted `Calibrator` as a Spark ML Model (kept as JSON in a Param, so it saves with its Params)."""

    calibrator = Param(Params._dummy(), "calibrator", "the fitted Calibrator, as JSON", TypeConverters.toString)

    def __init__(self, **params: Any) -> None:
        super().__init__()
        self._set(**params)

    def fitted(self) -> Calibrator:
        return Calibrator.from_dict(json.loads(self.getOrDefault("calibrator")))

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return calibrate(
            dataset, self.fitted(), score_col=self.getOrDefault("scoreCol"), out_col=self.getOrDefault("probabilityCol")
        )
