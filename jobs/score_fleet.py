"""Score every device's latest window and write the risk table (device, score, calibrated probability, alert, reason).

    python -m jobs.score_fleet --clean OUT/ingest/clean --run-dir OUT            # the model of the run's policy
    python -m jobs.score_fleet --clean ... --run-dir OUT --scorer tf --tf-model OUT/tf_model/model.pb --refit-on OUT/windows
    python -m jobs.score_fleet --clean ... --run-dir OUT --scorer mypkg.scorers:make_scorer --refit-on OUT/windows

The run folder's alerting/policy.json (written by evaluate_telemetry) gives the window length, features,
normalisation, calibration and thresholds, and the model they were fitted for (the run's BigDL LSTM, or the
baseline or a peer when its policy was the best on validation: `alerting.model`). With --refit-on W the calibration
and thresholds are fitted again on W's validation split with the chosen scorer (needed for any other model).
Writes OUT/risk/table/ (Parquet) and OUT/risk/summary.json, atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from functools import partial

from pipelines.chain import score_run
from pipelines.cli import job_parser, node_names, report, run
from pipelines.config import PipelineConfig
from pipelines.context import get_or_create
from pipelines.errors import InputError
from pipelines.evaluation.scoring import Scorer, bigdl_scorer, load_scorer, openvino_scorer, tf_scorer
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.models.train import load_model

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0], sections=("alerting", "evaluate"))
    parser.add_argument(
        "--clean", required=True, help="clean readings (Parquet) from ingest_telemetry or ingest_backblaze"
    )
    parser.add_argument("--run-dir", required=True, help="run folder: model/, alerting/policy.json")
    parser.add_argument("--out", default=None, help="output folder (default: <run-dir>/risk)")
    parser.add_argument("--policy", default=None, help="policy file (default: <run-dir>/alerting/policy.json)")
    parser.add_argument("--scorer", default="bigdl", help="bigdl, tf, openvino, or a factory 'package.module:function'")
    parser.add_argument("--model", default=None, help="BigDL model (default: the policy's, in the run folder)")
    parser.add_argument(
        "--tf-model",
        default=None,
        help="--scorer tf: frozen TensorFlow graph (.pb); --scorer openvino: that or an IR folder (export_openvino)",
    )
    parser.add_argument(
        "--tf-bin", default=None, help="--scorer tf: BigDL .bin of the graph's variables (trusted paths only)"
    )
    parser.add_argument(
        "--tf-inputs", default=None, type=node_names, help="--scorer tf, openvino: input node names, comma-separated"
    )
    parser.add_argument(
        "--tf-outputs", default=None, type=node_names, help="--scorer tf, openvino: output node names, comma-separated"
    )
    parser.add_argument(
        "--refit-on",
        default=None,
        metavar="WINDOWS",
        help="fit calibration and thresholds again on this windows folder's validation split",
    )
    parser.reads("clean")
    parser.reads("policy", fallback=lambda args: RunLayout(args.run_dir).policy)
    for name in ("model", "tf_model", "tf_bin", "refit_on"):
        parser.reads(name)
    parser.writes("out", fallback=lambda args: RunLayout(args.run_dir).risk)
    return parser


def make_scorer(spark, args: argparse.Namespace, config: PipelineConfig) -> Callable[[dict], Scorer] | None:
    """The scorer the options ask for, built from the policy's scoring record; None: the run's own model."""
    if args.scorer == "bigdl" and not args.model:
        return None

    def build(scoring: dict) -> Scorer:
        length, n_features = int(scoring["length"]), len(scoring["features"])
        batch_size = config.evaluate.batch_size
        if args.scorer == "bigdl":
            if not fs.exists(spark, args.model):
                raise InputError(f"no BigDL model at {args.model}")
            return bigdl_scorer(load_model(args.model), length=length, n_features=n_features, batch_size=batch_size)
        if args.scorer in ("tf", "openvino"):
            if not args.tf_model:
                raise InputError(f"--scorer {args.scorer} needs --tf-model")
            if args.scorer == "openvino" and args.tf_bin:
                raise InputError("--scorer openvino takes a frozen graph or an IR folder, not --tf-bin")
            graph_scorer = openvino_scorer if args.scorer == "openvino" else partial(tf_scorer, bin_uri=args.tf_bin)
            return graph_scorer(
                spark,
                args.tf_model,
                length=length,
                n_features=n_features,
                batch_size=batch_size,
                inputs=args.tf_inputs,
                outputs=args.tf_outputs,
            )
        return load_scorer(
            args.scorer, spark=spark, run_dir=args.run_dir, length=length, n_features=n_features, batch_size=batch_size
        )

    return build


def main(args: argparse.Namespace, config: PipelineConfig) -> None:
    spark = get_or_create(master=args.master, app_name="score_fleet")
    out = args.out or RunLayout(args.run_dir).risk
    scorer = make_scorer(spark, args, config)
    summary = score_run(
        spark,
        config,
        clean=args.clean,
        run_dir=args.run_dir,
        out=out,
        policy=args.policy,
        scorer=scorer,
        scored_by=None if scorer is None else args.scorer,
        refit_on=args.refit_on,
    )
    report(
        f"{summary['devices']} devices scored ({summary['policy']}): "
        + ", ".join(f"{k} {v}" for k, v in summary["by_band"].items())
        + f"\nrisk table: {out}/table"
    )


if __name__ == "__main__":
    sys.exit(run(main, build_parser()))
