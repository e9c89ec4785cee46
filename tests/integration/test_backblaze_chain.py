"""The whole Backblaze chain on four real days: ingest, windows, BigDL training, alerting, fleet scoring, report."""

import gzip
import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pipelines.cli import run
from pipelines.config import load_config
from pipelines.evaluation.report import read_event_scalars
from pipelines.telemetry import backblaze, sources

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_report_chromium import CHROMIUM, images_in_browser  # noqa: E402

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "backblaze"
DAYS = ["2013-04-14", "2013-04-15", "2013-04-16", "2013-04-17"]  # 15 failures, drives vanishing on the 15th

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL.is_dir(), reason=f"real Backblaze files not found at {REAL}"),
]


def test_backblaze_chain_alerts_scores_and_reports(spark, tmp_path, caplog):
    from jobs import score_fleet
    from jobs.backblaze_demo import run_backblaze

    data = tmp_path / "backblaze"
    data.mkdir()
    lines, failed, last_seen = 0, set(), {}
    for day in DAYS:
        shutil.copy(REAL / f"{day}.csv.gz", data)
        with gzip.open(REAL / f"{day}.csv.gz", "rt") as f:
            header = f.readline().rstrip("\n").split(",")
            serial, failure = header.index("serial_number"), header.index("failure")
            for line in f:
                fields = line.rstrip("\n").split(",")
                lines += 1
                last_seen[fields[serial]] = day
                if fields[failure] == "1":
                    failed.add(fields[serial])
    out = tmp_path / "run"
    # The stack's policy in force: the fleet is scored by every model, each calibrated, and their mean.
    config = load_config(env="ci", overrides=["backblaze.train.epochs=1", "alerting.model=stack"])
    with caplog.at_level(logging.INFO, logger="pipelines.models.fit"):
        metrics = run_backblaze(spark, str(data), str(out), config)

    # Every record of the real files is accounted for.
    ingest = metrics["counts"]["ingest"]
    assert ingest["read"] == lines == ingest["clean"] + ingest["quarantined"] and ingest["quarantined"] == 0
    assert (
        ingest["files"]["listed"] == ingest["files"]["read"] == 4
        and ingest["header_variants"] == 1
        and ingest["devices"] == len(last_seen)
    )
    assert ingest["failed_devices"] == len(failed) == 15
    assert (
        ingest["disappeared_devices"] == sum(1 for s, d in last_seen.items() if d != DAYS[-1] and s not in failed) > 0
    )
    for column in ("smart_187_raw", "smart_188_raw", "smart_198_raw", "smart_5_normalized"):  # not recorded in 2013
        assert ingest["attributes"][column] == {"files_absent": 0, "files_empty": 4, "reported": 0.0}
    # The attributes 2013's files report, found in the files, not listed by hand.
    assert ingest["feature_plan"] == {"raw": [1, 5, 9, 194, 197], "normalized": [], "missing": [], "change": [5, 197]}
    written = (out / "ingest" / "failures.csv").read_text().splitlines()[1:]
    assert {line.split(",")[0] for line in written} == failed
    alerting = metrics["alerting"]
    assert {
        "threshold",
        "false_alarm_rate_per_device_day",
        "recall",
        "mean_lead_time_days",
        "median_lead_time_days",
    } <= set(alerting)
    assert 0 <= alerting["threshold"] <= 1 and alerting["review_threshold"] <= alerting["threshold"]
    lead = alerting["lead_time"]
    assert lead["failed_devices"] == lead["detected"] + lead["missed"] > 0
    assert all(
        0 < r["lead_time_days"] <= 4
        for r in json.loads((out / "alerting" / "lead_times.json").read_text())
        if r["lead_time_days"] is not None
    )  # windows end 04-14 at the earliest (a drive's first day, padded), failures by 04-18
    assert any("cannot be confirmed or refuted" in n for n in metrics["notes"])
    # The peers on the same windows, and every model at its own policy on the same failed drives.
    assert set(metrics["peers"]) == {"logistic_window", "gbt_window"}
    assert all(m["count"] == metrics["test"]["count"] for m in metrics["peers"].values())
    at_policy = metrics["at_policy"]
    assert set(at_policy) == {"lstm", "baseline", "logistic_window", "gbt_window", "stack"}
    assert {p["failed_devices"] for p in at_policy.values()} == {lead["failed_devices"]}
    assert all(0 <= p["detected"] <= p["failed_devices"] for p in at_policy.values())
    assert "Each model at its own alert policy" in (out / "report" / "index.html").read_text()
    assert all(p["validation"]["failed_devices"] >= p["validation"]["detected"] >= 0 for p in at_policy.values())
    assert alerting["model"] in at_policy and alerting["threshold"] == at_policy[alerting["model"]]["threshold"]
    validation = alerting["validation"]
    assert validation["threshold_confidence"] == 0.9 and validation["bootstrap_replicates"] == 200
    assert validation["false_alarm_rate_interval"][0] <= validation["false_alarm_rate_interval"][1]

    policy = json.loads((out / "alerting" / "policy.json").read_text())
    assert policy["scoring"]["features"] == ingest["features"] + ["observed"]
    assert {"smart_5_growth", "smart_197_days_unchanged", "age_years", "family_seagate"} <= set(ingest["features"])
    assert policy["scoring"]["interval_minutes"] == 1440 and policy["scoring"]["length"] == 2
    assert policy["scoring"]["min_history"] == 1  # a drive's first day is windowed too, padded
    windows = spark.read.parquet(str(out / "windows" / "windows"))
    first_days = windows.where(F.col("window_end") == F.lit("2013-04-14").cast("timestamp"))
    n = len(policy["scoring"]["features"])  # the mask is the last feature: 0 on the padding step, 1 on the reading
    assert first_days.count() > 0
    assert first_days.where((F.col("features")[n - 1] != 0) | (F.col("features")[2 * n - 1] != 1)).count() == 0
    assert alerting["model"] == "stack" and policy["scoring"]["kind"] == "stack"

    # The LSTM is an ensemble of two (conf/ci): the model averages its members' probabilities.
    from pipelines.chain import train_run
    from pipelines.models.train import load_model, predict_scores

    training = json.loads((out / "training.json").read_text())
    assert [m["seed"] for m in training["members"]] == [0, 100]
    assert sum("cached as Samples" in r.getMessage() for r in caplog.records) == 1  # one cache for both members
    test_windows = sources.read_windows(spark, str(out / "windows"), "test").limit(200)

    def scores(model_path) -> dict:
        scored = predict_scores(load_model(str(model_path)), test_windows, length=2, n_features=n, batch_size=64)
        return {(r["device_id"], r["window_end"]): r["score"] for r in scored.collect()}

    member_scores = [scores(out / "members" / str(k) / "model" / "lstm.bigdl") for k in (0, 1)]
    ensemble = scores(out / "model" / "lstm.bigdl")
    assert len(ensemble) == 200 and member_scores[0] != member_scores[1]
    for key, p in ensemble.items():
        assert p == pytest.approx((member_scores[0][key] + member_scores[1][key]) / 2, abs=1e-5)
    # --resume on the finished run loads both members instead of training them again.
    member_model = out / "members" / "1" / "model" / "lstm.bigdl"
    written = member_model.stat().st_mtime_ns
    derived = backblaze.pipeline_config(config, ingest["features"])
    assert (
        train_run(spark, derived, windows=str(out / "windows"), run_dir=str(out), resume=True)["members"]
        == (training["members"])
    )
    assert member_model.stat().st_mtime_ns == written
    members = policy["scoring"]["members"]
    assert [m["name"] for m in members] == ["lstm", "baseline", "logistic_window", "gbt_window"]
    assert [m["kind"] for m in members] == ["bigdl", "spark_ml", "spark_ml", "spark_ml"]
    assert all(m["calibration"]["method"] == "platt" and (out / m["model"]).exists() for m in members)
    risk = json.loads((out / "risk" / "summary.json").read_text())
    assert risk["devices"] == ingest["devices"] == sum(risk["by_band"].values())
    table = spark.read.parquet(str(out / "risk" / "table"))
    scores = table.where(F.col("score").isNotNull())
    assert scores.count() > 0 and scores.where((F.col("score") <= 0) | (F.col("score") >= 1)).count() == 0
    assert {r["scored_by"] for r in table.select("scored_by").distinct().collect()} == {"stack"}
    assert risk["scored_at"].startswith("2013-04-17")

    training = json.loads((out / "training.json").read_text())
    # The report's fallback source; an ensemble's curves in training.json are its first member's.
    events = read_event_scalars(str(out / "members" / "0" / "summaries" / "lstm" / "train"))
    assert [list(p) for p in events["Loss"]] == training["train_loss"]

    index = out / "report" / "index.html"
    page = index.read_text()
    assert "Fleet risk table" in page and "BigDL LSTM" in page and "cannot be confirmed or refuted" in page
    if CHROMIUM:
        seen = images_in_browser(index, tmp_path)
        assert seen["broken"] == [] and seen["loaded"] == seen["total"] == 7

    # The job with another scorer plugged in: the policy is fitted again on the validation split for it.
    code = run(
        score_fleet.main,
        score_fleet.build_parser(),
        [
            "--env",
            "ci",
            "--clean",
            str(out / "ingest" / "clean"),
            "--run-dir",
            str(out),
            "--out",
            str(tmp_path / "risk2"),
            "--scorer",
            "test_scoring_alerting:make_scorer",
            "--refit-on",
            str(out / "windows"),
        ],
    )
    assert code == 0
    other = json.loads((tmp_path / "risk2" / "summary.json").read_text())
    assert other["devices"] == ingest["devices"] and other["policy"] != risk["policy"]

    # The report job refreshes the report of a finished run, with a caveat of the user's.
    from jobs import report as report_job

    assert run(report_job.main, report_job.build_parser(), ["--run-dir", str(out), "--note", "checked by <test>"]) == 0
    assert "checked by &lt;test&gt;" in index.read_text()


def test_seeds_run_once_each_on_one_ingest_and_report_mean_and_spread(spark, tmp_path):
    from jobs import backblaze_demo

    data = tmp_path / "backblaze"
    data.mkdir()
    for day in DAYS:
        shutil.copy(REAL / f"{day}.csv.gz", data)
    out = tmp_path / "seeds"
    argv = ["--env", "ci", "--set", "backblaze.train.epochs=1", "--set", "backblaze.train.members=1"]
    argv += ["--set", "evaluate.peers=[gbt_window]"]
    argv += ["--set", "alerting.model=gbt_window"]  # a Spark ML model's policy in force, scoring the fleet
    # The stack and the bootstrap's full size are the chain test's; here only their cost would be.
    argv += ["--set", "alerting.stack=false", "--set", "alerting.bootstrap_replicates=20"]
    code = run(
        backblaze_demo.main, backblaze_demo.parser, [*argv, "--input", str(data), "--out", str(out), "--seeds", "2"]
    )
    assert code == 0
    summary = json.loads((out / "seeds.json").read_text())
    runs = [json.loads((out / f"seed-{k}" / "metrics.json").read_text()) for k in range(2)]
    assert summary["seeds"] == 2 and not (out / "seed-0" / "ingest").exists()  # one ingest for both
    assert [r["counts"]["ingest"] for r in runs] == [runs[0]["counts"]["ingest"]] * 2
    assert runs[0]["counts"]["windows"] != runs[1]["counts"]["windows"]  # each seed splits the drives its own way
    auc = summary["figures"]["lstm.roc_auc"]
    assert auc["values"] == [r["test"]["roc_auc"] for r in runs]
    assert auc["min"] <= auc["mean"] <= auc["max"] and auc["std"] is not None
    assert summary["policy_models"] == ["gbt_window"] * 2
    policy = json.loads((out / "seed-0" / "alerting" / "policy.json").read_text())
    assert policy["scoring"]["kind"] == "spark_ml" and policy["scoring"]["model"] == "model/gbt_window"
    risk = json.loads((out / "seed-0" / "risk" / "summary.json").read_text())
    assert risk["devices"] == runs[0]["counts"]["ingest"]["devices"] == sum(risk["by_band"].values())
    assert summary["figures"]["in_force.at_policy.detected"]["values"] == [
        r["at_policy"]["gbt_window"]["detected"] for r in runs
    ]
    assert set(summary["figures"]) >= {
        "gbt_window.pr_auc",
        "gbt_window.at_policy.recall",
        "baseline.at_policy.detected",
    }
