"""A static HTML report of a run: figures as PNG files beside one index.html, no script, no external resource.

    <run>/report/index.html
    <run>/report/figures/{roc,pr,calibration,lead_time,training,confusion,scores}.png

Inputs, all from the run folder: metrics.json (`test`, `baseline`, optional `tf_imported`, `alerting`, `counts`),
training.json (training curves read from BigDL's summaries; the TensorBoard event files under summaries/ are read
directly when training.json is missing), predictions/ (per model, for ROC and precision-recall curves), and the
alerting folder (lead times, policy). `collect` gathers them with Spark (curves are aggregated on the executors),
`render` is pure (figures with matplotlib's Agg backend) and `write_report` commits the folder atomically.
"""

from __future__ import annotations

import html
import logging
import os
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.io import fs
from pipelines.layout import RunLayout

log = logging.getLogger(__name__)

FIGURES = ("roc", "pr", "calibration", "lead_time", "training", "confusion", "scores")
MODEL_LABELS = {
    "lstm": "BigDL LSTM",
    "tf_imported": "TF model imported into BigDL",
    "baseline": "last-reading LogReg",
    "logistic_window": "window-summary LogReg",
    "gbt_window": "window-summary GBT",
    "stack": "stack (mean calibrated probability)",
}
METRIC_KEYS = {"test": "lstm", "tf_imported": "tf_imported", "baseline": "baseline"}


# ---------------------------------------------------------------------------------------------------- data


def curve_points(
    predictions: DataFrame, *, label_col: str = "label", score_col: str = "score", max_points: int = 400
) -> dict[str, list[float]]:
    """ROC (fpr, tpr) and precision-recall (recall, precision) points, one per distinct score thinned to about
    `max_points`, computed on the executors (the per-score frame is ordered in one partition, as in metrics.py)."""
    grouped = predictions.groupBy(F.col(score_col).cast("double").alias("s")).agg(
        F.sum(F.when(F.col(label_col) == 1, 1).otherwise(0)).alias("pos"),
        F.sum(F.when(F.col(label_col) == 0, 1).otherwise(0)).alias("neg"),
    )
    down = Window.orderBy(F.col("s").desc())
    cum = (
        grouped.withColumn("tp", F.sum("pos").over(down.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        .withColumn("fp", F.sum("neg").over(down.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        .withColumn("k", F.row_number().over(down))
        .withColumn("n", F.count(F.lit(1)).over(Window.partitionBy(F.lit(1))))
        .withColumn("P", F.sum("pos").over(Window.partitionBy(F.lit(1))))
        .withColumn("N", F.sum("neg").over(Window.partitionBy(F.lit(1))))
    )
    step = F.greatest(F.lit(1), F.ceil(F.col("n") / F.lit(max_points)))
    rows = cum.where((F.col("k") % step == 0) | (F.col("k") == F.col("n")) | (F.col("k") == 1)).orderBy("k").collect()
    out: dict[str, list[float]] = {"fpr": [0.0], "tpr": [0.0], "recall": [], "precision": [], "thresholds": []}
    if not rows:
        return out
    big_p, big_n = int(rows[0]["P"]), int(rows[0]["N"])
    for r in rows:
        tp, fp = int(r["tp"]), int(r["fp"])
        out["fpr"].append(fp / big_n if big_n else 0.0)
        out["tpr"].append(tp / big_p if big_p else 0.0)
        out["recall"].append(tp / big_p if big_p else 0.0)
        out["precision"].append(tp / (tp + fp) if tp + fp else 1.0)
        out["thresholds"].append(float(r["s"]))
    out["prevalence"] = [big_p / (big_p + big_n) if big_p + big_n else 0.0]
    return out


def read_event_scalars(folder: str) -> dict[str, list[tuple[int, float]]]:
    """Scalars of the TensorBoard event files under a local `folder` (BigDL's TrainSummary/ValidationSummary):
    {tag: [(step, value), ...]}. Reads the TFRecord framing itself; CRCs are not checked."""
    from tensorboard.compat.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(folder).rglob("*tfevents*")):
        data = path.read_bytes()
        offset = 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            start = offset + 12
            if start + length + 4 > len(data):
                break
            event = event_pb2.Event.FromString(data[start : start + length])
            offset = start + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return {tag: sorted(points) for tag, points in scalars.items()}


def training_curves(spark: SparkSession, run_dir: str) -> dict[str, Any] | None:
    """Training curves: training.json if present, else the summaries' event files (local run folders only)."""
    uri = RunLayout(run_dir).training
    if fs.exists(spark, uri):
        record = fs.read_json(spark, uri)
        return {
            "source": "training.json",
            "train_loss": record.get("train_loss", []),
            "validation": record.get("validation", {}),
        }
    local = _local_path(RunLayout(run_dir).summaries)
    if local and os.path.isdir(local):
        train = read_event_scalars(os.path.join(local, "lstm", "train"))
        validation = read_event_scalars(os.path.join(local, "lstm", "validation"))
        if train or validation:
            return {"source": "summaries", "train_loss": train.get("Loss", []), "validation": validation}
    return None


def _local_path(uri: str) -> str | None:
    if uri.startswith("file:"):
        return "/" + uri[len("file:") :].lstrip("/")
    if "://" in uri:
        return None
    return uri


def collect(spark: SparkSession, run_dir: str, *, notes: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the report shows, gathered from the run folder (small: curves are thinned on the executors)."""
    run = RunLayout(run_dir)
    metrics = run.read_metrics(spark)
    curves: dict[str, Any] = {}
    predictions_uri = run.predictions
    if fs.exists(spark, predictions_uri):
        predictions = spark.read.parquet(predictions_uri)
        for (model,) in predictions.select("model").distinct().orderBy("model").collect():
            curves[model] = curve_points(predictions.where(F.col("model") == model))
    leads_uri, risk_uri = run.lead_times, run.risk_summary
    return {
        "run_dir": run_dir,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "metrics": metrics,
        "curves": curves,
        "training": training_curves(spark, run_dir),
        "lead_times": fs.read_json(spark, leads_uri) if fs.exists(spark, leads_uri) else [],
        "risk": fs.read_json(spark, risk_uri) if fs.exists(spark, risk_uri) else None,
        "notes": list(notes) + list(metrics.get("notes", [])),
    }


# ---------------------------------------------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=11, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def _fig_roc(data: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.plot([0, 1], [0, 1], ls=":", color="#999", lw=1)
    drawn = False
    for model, c in data["curves"].items():
        if len(c["fpr"]) > 1:
            auc = _metric(data, model, "roc_auc")
            ax.plot(c["fpr"], c["tpr"], lw=1.6, label=f"{MODEL_LABELS.get(model, model)} (AUC {_f(auc)})")
            drawn = True
    if not drawn:
        _message(ax, "no predictions in the run folder")
    ax.set_xlabel("false positive rate (windows)")
    ax.set_ylabel("true positive rate (windows)")
    ax.set_title("ROC, test split")
    if drawn:
        ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def _fig_pr(data: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    drawn = False
    for model, c in data["curves"].items():
        if c["recall"]:
            ap = _metric(data, model, "pr_auc")
            ax.step(
                c["recall"],
                c["precision"],
                where="post",
                lw=1.6,
                label=f"{MODEL_LABELS.get(model, model)} (AP {_f(ap)})",
            )
            drawn = True
            prevalence = c.get("prevalence", [None])[0]
    if drawn and prevalence is not None:
        ax.axhline(prevalence, ls=":", color="#999", lw=1, label=f"prevalence {prevalence:.3g}")
    if not drawn:
        _message(ax, "no predictions in the run folder")
    ax.set_xlabel("recall (windows)")
    ax.set_ylabel("precision (windows)")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall, test split")
    if drawn:
        ax.legend(loc="upper right", fontsize=8)
    _save(fig, path)


def _fig_calibration(data: dict, path: Path) -> None:
    plt = _plt()
    alerting = data["metrics"].get("alerting", {})
    rel, profile = alerting.get("reliability"), alerting.get("log_profile")
    fig, (ax, ax_log) = plt.subplots(1, 2, figsize=(10.4, 4.4))
    styles = (("raw", "raw score", "o"), ("calibrated", "calibrated probability", "s"))
    ax.plot([0, 1], [0, 1], ls=":", color="#999", lw=1, label="perfect calibration")
    if rel:
        for key, label, marker in styles:
            curve = rel[key]["curve"]
            ax.plot(
                [c["mean_predicted"] for c in curve],
                [c["observed_rate"] for c in curve],
                marker=marker,
                lw=1.4,
                label=f"{label} (ECE {rel[key]['ece']:.3f}, Brier {rel[key]['brier']:.4f})",
            )
        ax.legend(loc="upper left", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    else:
        _message(ax, "no alerting block in metrics.json")
    ax.set_xlabel("predicted (bin mean, 10 equal bins)")
    ax.set_ylabel("observed failure rate")
    ax.set_title("Reliability, test split", fontsize=10)
    if profile:
        lows = [c["mean_predicted"] for key in ("raw", "calibrated") for c in profile[key] if c["mean_predicted"] > 0]
        floor = max(min(lows) / 3 if lows else 1e-6, 1e-7)
        ax_log.plot([floor, 1], [floor, 1], ls=":", color="#999", lw=1)
        for key, label, marker in styles:
            pts = [
                (max(c["mean_predicted"], floor), max(c["positives"] / c["count"], floor), c["count"])
                for c in profile[key]
            ]
            ax_log.plot([x for x, _, _ in pts], [y for _, y, _ in pts], marker=marker, lw=1.2, label=label)
        ax_log.set_xscale("log")
        ax_log.set_yscale("log")
        ax_log.set_xlim(floor, 1)
        ax_log.set_ylim(floor, 1)
        ax_log.legend(loc="upper left", fontsize=8)
        ax_log.text(
            0.98,
            0.02,
            f"bins with no failure drawn at {floor:.0e}",
            ha="right",
            va="bottom",
            transform=ax_log.transAxes,
            fontsize=7,
            color="#666",
        )
    else:
        _message(ax_log, "no log-binned profile")
    ax_log.set_xlabel("predicted (bin mean, log-spaced bins)")
    ax_log.set_ylabel("observed failure rate")
    ax_log.set_title("Reliability where rare failures live (log scales)", fontsize=10)
    _save(fig, path)


def _fig_lead_time(data: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    leads = [r["lead_time_days"] for r in data["lead_times"] if r["lead_time_days"] is not None]
    missed = sum(1 for r in data["lead_times"] if r["lead_time_days"] is None)
    alerting = data["metrics"].get("alerting", {})
    if leads:
        top = max(leads)
        bins = max(1, min(30, int(top) + 1))
        ax.hist(leads, bins=bins, range=(0, max(1.0, float(int(top) + 1))), color="#3a7", edgecolor="white")
        for key, style in (("mean_lead_time_days", "--"), ("median_lead_time_days", ":")):
            value = alerting.get(key)
            if value is not None:
                ax.axvline(value, color="#333", ls=style, lw=1.2, label=f"{key.split('_')[0]} {value:.1f} d")
        ax.legend(fontsize=8)
        ax.set_xlabel("days from first alert to failure")
        ax.set_ylabel("failed devices")
    else:
        _message(
            ax,
            "no failed device was alerted before its failure"
            if data["lead_times"]
            else "no failed device in the evaluated split (or no failure list given)",
        )
    ax.set_title(f"Lead time: {len(leads)} detected, {missed} missed")
    _save(fig, path)


def _fig_training(data: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10.8, 3.6))
    training = data["training"]
    if not training:
        for ax in axes:
            _message(ax, "no training.json or summaries")
    else:
        loss = training.get("train_loss") or []
        val = training.get("validation") or {}
        ax = axes[0]
        if loss:
            ax.plot([p[0] for p in loss], [p[1] for p in loss], lw=1, color="#36c", label="train loss")
        if val.get("Loss"):
            ax.plot(
                [p[0] for p in val["Loss"]], [p[1] for p in val["Loss"]], "o-", color="#c63", label="validation loss"
            )
        ax.set_xlabel("iteration")
        ax.set_title("Loss (BigDL TrainSummary / ValidationSummary)", fontsize=9)
        ax.legend(fontsize=8)
        ax = axes[1]
        acc = val.get("Top1Accuracy") or []
        if acc:
            ax.plot([p[0] for p in acc], [p[1] for p in acc], "o-", color="#693")
        else:
            _message(ax, "no validation accuracy")
        ax.set_xlabel("iteration")
        ax.set_title("Validation Top1Accuracy", fontsize=9)
        ax = axes[2]
        drawn = False
        for key in ("roc_auc", "pr_auc"):
            if val.get(key):
                ax.plot([p[0] for p in val[key]], [p[1] for p in val[key]], "o-", label=key.replace("_", "-").upper())
                drawn = True
        if drawn:
            ax.legend(fontsize=8)
            ax.set_ylim(0, 1.02)
        else:
            _message(ax, "no per-epoch AUC")
        ax.set_xlabel("epoch")
        ax.set_title("Validation AUCs per epoch", fontsize=9)
    fig.suptitle(f"Training curves ({training['source'] if training else 'none'})", fontsize=10)
    _save(fig, path)


def _fig_confusion(data: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.9))
    alerting = data["metrics"].get("alerting", {})
    cm = alerting.get("confusion_matrix")
    if cm:
        grid = [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]]
        ax.imshow([[v**0.25 for v in row] for row in grid], cmap="Blues")
        for i in range(2):
            for j in range(2):
                ax.text(
                    j,
                    i,
                    f"{grid[i][j]:,}",
                    ha="center",
                    va="center",
                    fontsize=13,
                    color="white" if grid[i][j] ** 0.25 > max(max(r) for r in grid) ** 0.25 * 0.6 else "black",
                )
        ax.set_xticks([0, 1], ["no alert", "alert"])
        ax.set_yticks([0, 1], ["healthy within\nhorizon", "fails within\nhorizon"])
        ax.set_title(f"Test windows at alert threshold {alerting['threshold']:.3g}", fontsize=9)
    else:
        _message(ax, "no alerting block in metrics.json")
    _save(fig, path)


def _fig_scores(data: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    alerting = data["metrics"].get("alerting", {})
    profile = (alerting.get("log_profile") or {}).get("calibrated")
    if profile:
        edges = [c["lower"] for c in profile]
        widths = [c["upper"] - c["lower"] for c in profile]
        positives = [c["positives"] for c in profile]
        negatives = [c["count"] - c["positives"] for c in profile]
        ax.bar(
            edges,
            negatives,
            width=[w * 0.5 for w in widths],
            align="edge",
            color="#58a",
            label="healthy within horizon",
        )
        ax.bar(
            [e + w * 0.5 for e, w in zip(edges, widths)],
            positives,
            width=[w * 0.5 for w in widths],
            align="edge",
            color="#e73",
            label="fails within horizon",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axvspan(
            max(alerting["review_threshold"], edges[0]),
            alerting["threshold"],
            color="#fc3",
            alpha=0.3,
            label="uncertain band",
        )
        ax.axvline(alerting["threshold"], color="#c33", lw=1.4, label="alert threshold")
        ax.set_xlim(edges[0], 1)
        ax.legend(fontsize=8, loc="upper right")
        ax.set_xlabel("calibrated probability (log-spaced bins)")
        ax.set_ylabel("test windows")
    else:
        _message(ax, "no alerting block in metrics.json")
    ax.set_title("Calibrated probabilities and the alert policy", fontsize=10)
    _save(fig, path)


_FIGURE_FUNCS = {
    "roc": _fig_roc,
    "pr": _fig_pr,
    "calibration": _fig_calibration,
    "lead_time": _fig_lead_time,
    "training": _fig_training,
    "confusion": _fig_confusion,
    "scores": _fig_scores,
}


# ---------------------------------------------------------------------------------------------------- html


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def promise(alerting: dict) -> str:
    """The false-alarm target, the validation estimate with its bootstrap interval, and the test figure."""
    validation = alerting.get("validation", {})
    target = alerting.get("target_false_alarm_rate")
    parts = [
        f"False alarms per device-day: target {_pct(target)}" if target is not None else "False alarms per device-day:"
    ]
    estimate = f"validation estimate {_pct(validation.get('false_alarm_rate_per_device_day'))}"
    interval = validation.get("false_alarm_rate_interval")
    if interval:
        estimate += f" (90% interval over resampled devices {_pct(interval[0])} to {_pct(interval[1])})"
    parts.append(estimate)
    parts.append(f"test {_pct(alerting.get('false_alarm_rate_per_device_day'))}")
    confidence = validation.get("threshold_confidence")
    tail = (
        f" The threshold holds the target in {confidence:.0%} of the validation devices' bootstrap resamples."
        if confidence
        else ""
    )
    return "; ".join(parts) + "." + tail


def _metric(data: dict, model: str, key: str) -> Any:
    for metrics_key, name in METRIC_KEYS.items():
        if name == model:
            return data["metrics"].get(metrics_key, {}).get(key)
    return None


def honest_notes(data: dict) -> list[str]:
    """What the numbers can and cannot show, derived from the counts in the run."""
    notes = []
    metrics = data["metrics"]
    alerting = metrics.get("alerting", {})
    lead = alerting.get("lead_time", {})
    failed = lead.get("failed_devices")
    if failed is not None:
        if failed == 0:
            notes.append("No failed device in the evaluated (test) split: recall and lead times are undefined here.")
        elif failed < 30:
            notes.append(
                f"Recall rests on {failed} failed devices in the test split: one device moves it by "
                f"{100 / failed:.1f} points; read it as a rough indication, not an estimate."
            )
    days = alerting.get("device_days", {})
    neg = days.get("negative_device_days")
    if neg:
        notes.append(
            f"The false-alarm rate is measured on {neg:,} healthy device-days (resolution {1 / neg:.2g}); the threshold "
            f"was chosen on the validation split, so the test rate can differ from the target."
        )
    validation = alerting.get("validation", {})
    if validation.get("positive_device_days") is not None and validation["positive_device_days"] < 50:
        notes.append(
            f"The calibration and thresholds were fitted on {validation['positive_device_days']} positive device-days "
            "of the validation split: probabilities are coarse."
        )
    test = metrics.get("test", {})
    if test.get("positives") is not None and test["positives"] < 100:
        notes.append(f"The test split holds {test['positives']} positive windows: AUCs have wide uncertainty.")
    return notes


def render(data: dict, out_dir: str | Path) -> Path:
    """Write index.html and figures/*.png into the local folder `out_dir`; return the HTML's path."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        _FIGURE_FUNCS[name](data, out / "figures" / f"{name}.png")
    page = _html(data)
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _html(data: dict) -> str:
    e = html.escape
    metrics = data["metrics"]
    alerting = metrics.get("alerting", {})
    lead = alerting.get("lead_time", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Failure prediction report</title>',
        "<style>body{font-family:sans-serif;max-width:1150px;margin:1.5em auto;color:#222;padding:0 1em}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
        "th:first-child,td:first-child{text-align:left}.cards{display:flex;gap:1em;flex-wrap:wrap}"
        ".card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:10em}.card b{font-size:1.4em;display:block}"
        "figure{display:inline-block;margin:.5em;vertical-align:top;max-width:100%}img{max-width:100%;height:auto}figcaption{font-size:.85em;color:#555;max-width:34em}"
        ".note{background:#fff8e0;border-left:4px solid #eb3;padding:.4em .8em;margin:.4em 0}</style></head><body>",
        "<h1>Failure prediction report</h1>",
        f"<p>Run folder <code>{e(str(data['run_dir']))}</code>, generated {e(data['generated'])}.</p>",
    ]
    if alerting:
        parts += [
            "<h2>Alert policy on the test split</h2>",
            f"<p>Model: {e(MODEL_LABELS.get(alerting.get('model', 'lstm'), alerting.get('model', 'lstm')))}; "
            f"{e(alerting.get('description', ''))}.</p>",
            f"<p>{e(promise(alerting))}</p>",
            '<div class="cards">',
            _card("alert threshold (probability)", _f(alerting.get("threshold"), 4)),
            _card("false alarms per device-day", _pct(alerting.get("false_alarm_rate_per_device_day"))),
            _card(
                "failed devices alerted before failing",
                f"{_pct(alerting.get('recall'), 1)} ({lead.get('detected', 0)} of {lead.get('failed_devices', 0)})",
            ),
            _card("mean lead time", f"{_f(alerting.get('mean_lead_time_days'), 1)} days"),
            _card("median lead time", f"{_f(alerting.get('median_lead_time_days'), 1)} days"),
            _card("uncertain device-days (review)", f"{alerting.get('uncertain_device_days', 0):,}"),
            "</div>",
        ]
    parts += ["<h2>Models side by side (test split)</h2>", _model_table(data)]
    if metrics.get("at_policy"):
        parts += [
            "<h3>Each model at its own alert policy</h3>",
            "<p>Each model's scores calibrated and its threshold chosen on the validation split (so its validation "
            "figures are optimistic), then measured on the test split. The policy in force is the chosen model's.</p>",
            _policy_table(metrics["at_policy"], alerting.get("model")),
        ]
    points = alerting.get("operating_points") or []
    if points:
        parts += [
            f"<h3>{e(MODEL_LABELS.get(alerting.get('model', 'lstm'), 'the model'))} at other false-alarm rates</h3>",
            "<p>Thresholds chosen on the test split itself: optimistic, for comparison only.</p>",
            "<table><tr><th>target false alarms / device-day</th><th>threshold</th><th>false alarms reached</th>"
            "<th>failed devices alerted</th><th>mean lead (days)</th><th>median lead (days)</th></tr>",
            *[
                f"<tr><td>{_pct(p['target_false_alarm_rate'], 1)}</td><td>{_f(p['threshold'], 4)}</td>"
                f"<td>{_pct(p['false_alarm_rate_per_device_day'])}</td><td>{_pct(p.get('recall'), 1)}</td>"
                f"<td>{_f(p.get('mean_lead_time_days'), 1)}</td><td>{_f(p.get('median_lead_time_days'), 1)}</td></tr>"
                for p in points
            ],
            "</table>",
        ]
    captions = {
        "roc": "ROC curves of every model with predictions in the run (windows of the test split).",
        "pr": "Precision-recall curves; the dotted line is the share of positive windows.",
        "calibration": "Reliability: observed failure rate against predicted probability, before and after calibration "
        "(fitted on the validation split); left on 10 equal bins, right on log-spaced bins for rare failures.",
        "lead_time": "Days between the first alert and the failure, for each failed device of the test split alerted before it failed.",
        "training": "Training curves from BigDL's summaries: training loss per iteration, validation loss and accuracy, "
        "validation ROC-AUC and PR-AUC per epoch.",
        "confusion": "Confusion matrix of the test windows at the alert threshold (label: fails within the horizon).",
        "scores": "Calibrated probabilities of the test windows by label (log scales), with the uncertain band and the "
        "alert threshold.",
    }
    parts.append("<h2>Figures</h2>")
    for name in FIGURES:
        parts.append(
            f'<figure><img src="figures/{name}.png" alt="{e(name)}"><figcaption>{e(captions[name])}</figcaption></figure>'
        )
    notes = honest_notes(data) + list(data.get("notes", []))
    parts += ["<h2>What these numbers can and cannot show</h2>", *[f'<p class="note">{e(n)}</p>' for n in notes]]
    if data.get("risk"):
        parts += _risk_section(data["risk"])
    counts = metrics.get("counts")
    if counts:
        parts += ["<h2>Data</h2>", _counts_table(counts)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _card(title: str, value: str) -> str:
    return f'<div class="card">{html.escape(title)}<b>{html.escape(value)}</b></div>'


def _model_table(data: dict) -> str:
    metrics = data["metrics"]
    rows = [
        "<table><tr><th>model</th><th>ROC-AUC</th><th>PR-AUC</th><th>precision@0.5</th><th>recall@0.5</th>"
        "<th>F1@0.5</th><th>windows</th><th>positives</th></tr>"
    ]
    named = [(name, metrics.get(key)) for key, name in METRIC_KEYS.items()]
    for name, m in named + list(metrics.get("peers", {}).items()):
        if not m:
            if name == "tf_imported":
                rows.append('<tr><td>TF model imported into BigDL</td><td colspan="7">not part of this run</td></tr>')
            continue
        rows.append(
            f"<tr><td>{html.escape(MODEL_LABELS.get(name, name))}</td>"
            + "".join(f"<td>{_f(m.get(k))}</td>" for k in ("roc_auc", "pr_auc", "precision", "recall", "f1"))
            + f"<td>{m.get('count', 'n/a'):,}</td><td>{m.get('positives', 'n/a'):,}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _policy_table(points: dict, in_force: str | None) -> str:
    rows = [
        "<table><tr><th>model</th><th>threshold</th><th>validation: failed devices alerted</th>"
        "<th>validation: false alarms</th><th>test: failed devices alerted</th><th>test: false alarms</th>"
        "<th>mean lead (days)</th><th>median lead (days)</th></tr>"
    ]

    def alerted(p: dict) -> str:
        return f"{p.get('detected') or 0} of {p.get('failed_devices') or 0} ({_pct(p.get('recall'), 1)})"

    for name, p in points.items():
        label = MODEL_LABELS.get(name, name) + (" (in force)" if name == in_force else "")
        v = p.get("validation", {})
        rows.append(
            f"<tr><td>{html.escape(label)}</td><td>{_f(p.get('threshold'), 4)}</td><td>{alerted(v)}</td>"
            f"<td>{_pct(v.get('false_alarm_rate_per_device_day'))}</td><td>{alerted(p)}</td>"
            f"<td>{_pct(p.get('false_alarm_rate_per_device_day'))}</td>"
            f"<td>{_f(p.get('mean_lead_time_days'), 1)}</td><td>{_f(p.get('median_lead_time_days'), 1)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _risk_section(risk: dict) -> list[str]:
    e = html.escape
    parts = [
        "<h2>Fleet risk table</h2>",
        f"<p>{e(str(risk.get('devices', 0)))} devices scored at {e(str(risk.get('scored_at', '')))}; by band: "
        + ", ".join(f"{e(str(k))} {v}" for k, v in sorted(risk.get("by_band", {}).items()))
        + ".</p>",
    ]
    top = risk.get("top", [])
    if top:
        parts.append(
            "<table><tr><th>device</th><th>last window</th><th>score</th><th>probability</th><th>band</th><th>reason</th></tr>"
        )
        for r in top:
            parts.append(
                f"<tr><td>{e(str(r['device_id']))}</td><td>{e(str(r.get('window_end', '')))}</td><td>{_f(r.get('score'), 4)}</td>"
                f"<td>{_f(r.get('probability'), 4)}</td><td>{e(str(r.get('band')))}</td>"
                f"<td style='text-align:left'>{e(str(r.get('reason', '')))}</td></tr>"
            )
        parts.append("</table>")
    return parts


def _counts_table(counts: dict) -> str:
    rows = ["<table><tr><th>step</th><th>counts</th></tr>"]
    for step, value in counts.items():
        text = (
            ", ".join(f"{k}: {v}" for k, v in value.items() if not isinstance(v, (dict, list)))
            if isinstance(value, dict)
            else str(value)
        )
        rows.append(f"<tr><td>{html.escape(step)}</td><td style='text-align:left'>{html.escape(text)}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------------- the job


def write_report(spark: SparkSession, run_dir: str, *, notes: Sequence[str] = ()) -> str:
    """Collect, render into a local temporary folder and commit it to `run_dir/report` atomically; return its URI."""
    data = collect(spark, run_dir, notes=notes)
    target = RunLayout(run_dir).report
    fs.write_local_dir(spark, target, lambda local: render(data, local))
    log.info("report written to %s/index.html", target)
    return f"{target}/index.html"
