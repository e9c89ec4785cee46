"""The whole chain on Backblaze drive statistics: ingest, window, train, evaluate with alerting, score, report.

    python -m jobs.backblaze_demo --input ../shared/data/backblaze --out runs/backblaze

Everything goes under --out: ingest/, windows/, model/, summaries/, predictions/, alerting/, risk/, report/ and
metrics.json (`test`, `baseline`, `peers`, `alerting`, `at_policy`, `counts`, `timings_s`, `notes`). The `backblaze`
config section sets the windows and the training (`--set backblaze.train.epochs=3`), `alerting` the policy.

With `--seeds K` (K > 1) the data are ingested once and the rest runs K times, seed k (0, 1, ...) fixing the split and
the sampling of negatives (`backblaze.split_seed` + k) and the initial weights (k), each run in `--out/seed-<k>/`;
`--out/seeds.json` gives each figure's mean, spread (standard deviation, minimum, maximum) and values.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import sys
from datetime import UTC, datetime

from pipelines.chain import evaluate_run, score_run, train_run
from pipelines.cli import Steps, job_parser, report, run
from pipelines.config import as_dict
from pipelines.context import driver_peak_memory_mb, get_or_create
from pipelines.errors import InputError
from pipelines.evaluation.report import write_report
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.telemetry import backblaze

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0], sections=("backblaze", "alerting"))
parser.add_argument("--input", required=True, help="Backblaze daily files: folder, file or glob (*.csv, *.csv.gz)")
parser.add_argument("--out", default=None, help="run folder (default: runs/backblaze-<UTC timestamp>)")
parser.add_argument("--seeds", type=int, default=1, help="runs with seeds 0..K-1 and their mean and spread (K > 1)")
parser.reads("input")
parser.writes(
    "out",
    "ingest",
    "windows",
    RunLayout.PREDICTIONS,
    RunLayout.ALERTING,
    RunLayout.RISK,
    RunLayout.REPORT,
    fallback=lambda args: f"runs/backblaze-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}",
)
parser.writes("out", "config.json", RunLayout.MODEL, RunLayout.TRAINING, RunLayout.METRICS, mode="overwrite")
parser.writes("out", RunLayout.CHECKPOINTS, RunLayout.SUMMARIES, RunLayout.MEMBERS, mode="append")


def data_notes(counts: dict, window_counts: dict, config) -> list[str]:
    """What a Backblaze run of this size can and cannot show, from its own counts."""
    bb = config.backblaze
    first, last = counts["first_day"], counts["last_day"]
    days = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days + 1 if first and last else 0
    notes = [
        f"The data cover {days} days ({first} to {last}) of {counts['devices']:,} drives, {counts['failed_devices']} of "
        f"which failed. A window needs {bb.window_days} days of history, so no alert can come earlier than day "
        f"{bb.window_days} and no lead time can exceed {max(days - bb.window_days, 0)} days; the labels "
        f"(fails within {bb.horizon_days:g} days) train the model to warn at most about {bb.horizon_days:g} days ahead. "
        "Published lead times of 10 to 60 days come from years of data and cannot be confirmed or refuted here.",
    ]
    plan = counts["feature_plan"]
    unused = [name for name, a in counts["attributes"].items() if name not in backblaze.FeaturePlan(**plan).columns()]
    notes.append(
        f"Features: {len(counts['features'])} from {len(plan['raw'])} raw and {len(plan['normalized'])} normalised "
        f"SMART attributes reported in at least {bb.min_populated:.0%} of the lines; {len(unused)} attribute "
        "columns reported less often are not used."
    )
    test = window_counts.get("test", {})
    notes.append(
        f"Test split: {test.get('windows', 0):,} windows of {test.get('devices', 0):,} drives, "
        f"{test.get('positives', 0)} positive windows. Drives that vanished without failing: "
        f"{counts['disappeared_devices']} (their windows whose horizon passes their last day are "
        f"{'dropped' if bb.disappeared == 'censor' else 'kept as healthy'})."
    )
    return notes


def run_backblaze(spark, input_uri: str, out: str, config, *, ingested: tuple[str, dict] | None = None) -> dict:
    """Every step into `out`; returns metrics.json's content. `ingested`: (folder, counts) of data already ingested
    (the seeds of `run_seeds` share one ingest), or None to ingest `input_uri` into `out`/ingest."""
    run = RunLayout(out)
    step = Steps()

    fs.write_json(spark, f"{out}/config.json", as_dict(config))
    if ingested is None:
        ingested = (
            f"{out}/ingest",
            step("ingest", backblaze.ingest_backblaze, spark, input_uri, f"{out}/ingest", config.backblaze),
        )
    ingest_uri, counts = ingested
    derived = backblaze.pipeline_config(config, counts["features"])
    window_counts = step("windows", backblaze.write_windows, spark, ingest_uri, f"{out}/windows", config)
    training = step("train", train_run, spark, derived, windows=f"{out}/windows", run_dir=out)
    metrics = step(
        "evaluate",
        evaluate_run,
        spark,
        derived,
        windows=f"{out}/windows",
        run_dir=out,
        failures=f"{ingest_uri}/{backblaze.FAILURES_FILE}",
    )
    risk = step("score", score_run, spark, derived, clean=f"{ingest_uri}/{backblaze.CLEAN_DIR}", run_dir=out)
    metrics.update(
        counts={
            "ingest": counts,
            "windows": window_counts,
            "training": {k: training[k] for k in ("epochs", "iterations", "batch_size")},
            "risk": risk["by_band"],
        },
        timings_s=step.with_total(),
        driver_memory=driver_peak_memory_mb(spark),
        notes=data_notes(counts, window_counts, config),
    )
    fs.write_json(spark, run.metrics, metrics)
    write_report(spark, out)
    return metrics


def seeded(config, seed: int):
    """`config` with seed `seed`: the split and the sampling (`backblaze.split_seed` + seed) and the weights."""
    bb = config.backblaze
    train = dataclasses.replace(bb.train, seed=seed)
    return dataclasses.replace(config, backblaze=dataclasses.replace(bb, split_seed=bb.split_seed + seed, train=train))


def run_seeds(spark, input_uri: str, out: str, config, seeds: int) -> dict:
    """Ingest once, then `run_backblaze` with seeds 0..seeds-1 in `out`/seed-<k>; writes and returns seeds.json."""
    ingested = f"{out}/ingest", backblaze.ingest_backblaze(spark, input_uri, f"{out}/ingest", config.backblaze)
    runs = [
        run_backblaze(spark, input_uri, f"{out}/seed-{k}", seeded(config, k), ingested=ingested) for k in range(seeds)
    ]
    summary = {"seeds": seeds, "policy_models": [m["alerting"].get("model") for m in runs], "figures": spread(runs)}
    fs.write_json(spark, f"{out}/seeds.json", summary)
    return summary


def figures(metrics: dict) -> dict[str, float | None]:
    """The figures compared across seeds: each model's ROC-AUC and PR-AUC, and what it does at its own policy."""
    models = {"lstm": metrics["test"], "baseline": metrics["baseline"], **metrics.get("peers", {})}
    out: dict[str, float | None] = {}
    for name, m in models.items():
        out[f"{name}.roc_auc"], out[f"{name}.pr_auc"] = m["roc_auc"], m["pr_auc"]
    points = metrics.get("at_policy", {})
    in_force = metrics.get("alerting", {}).get("model")
    if in_force in points:
        points = {**points, "in_force": points[in_force]}
    for name, p in points.items():
        for key in ("recall", "detected", "false_alarm_rate_per_device_day", "mean_lead_time_days"):
            out[f"{name}.at_policy.{key}"] = p.get(key)
        for key in ("recall", "detected"):  # on the validation split, where the policy was fitted
            out[f"{name}.validation.{key}"] = p.get("validation", {}).get(key)
    return out


def spread(runs: list[dict]) -> dict[str, dict]:
    """Mean, standard deviation, minimum and maximum of each figure over the runs (None values left out)."""
    per_run = [figures(m) for m in runs]
    out = {}
    for key in per_run[0]:
        values = [r.get(key) for r in per_run]
        known = [float(v) for v in values if v is not None]
        out[key] = {
            "mean": statistics.fmean(known) if known else None,
            "std": statistics.stdev(known) if len(known) > 1 else None,
            "min": min(known, default=None),
            "max": max(known, default=None),
            "values": values,
        }
    return out


def main(args, config) -> None:
    out = args.out  # the parser's fallback: runs/backblaze-<UTC timestamp>
    spark = get_or_create(master=args.master, app_name="backblaze_demo")
    if args.seeds < 1:
        raise InputError(f"--seeds must be at least 1, not {args.seeds}")
    if args.seeds > 1:
        summary = run_seeds(spark, args.input, out, config, args.seeds)
        by_figure = summary["figures"]
        lines = [f"{args.seeds} seeds (mean, standard deviation, min-max):"]
        width = max(map(len, by_figure)) + 2
        for key, s in by_figure.items():
            if s["mean"] is not None:
                lines.append(f"  {key:<{width}}{_f(s['mean'])} +- {_f(s['std'])}  ({_f(s['min'])}-{_f(s['max'])})")
        lines.append(f"the policy's model per seed: {', '.join(map(str, summary['policy_models']))}")
        report("\n".join(lines) + f"\nrun folders: {out}/seed-<k> (summary: {out}/seeds.json)")
        return
    metrics = run_backblaze(spark, args.input, out, config)
    alerting = metrics["alerting"]
    report(
        f"BigDL LSTM test ROC-AUC {_f(metrics['test']['roc_auc'])}, PR-AUC {_f(metrics['test']['pr_auc'])}; "
        f"baseline ROC-AUC {_f(metrics['baseline']['roc_auc'])}, PR-AUC {_f(metrics['baseline']['pr_auc'])}\n"
        f"alert policy ({alerting.get('model', 'lstm')}'s): threshold {_f(alerting['threshold'])}, false alarms {_f(alerting['false_alarm_rate_per_device_day'])} "
        f"per device-day, recall {_f(alerting['recall'])}, mean lead {_f(alerting['mean_lead_time_days'])} days, "
        f"median {_f(alerting['median_lead_time_days'])} days\nrun folder: {out} (report: {out}/report/index.html)"
    )


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(run(main, parser))
