"""Evaluate an imported TensorFlow model on the windows, on the cluster, beside the run's BigDL LSTM.

    python -m jobs.evaluate_tf --windows OUT/windows --run-dir OUT/run --model M.pb [--bin M.bin] [--engine openvino]

Writes `RUN/predictions_tf/<name>/` (Parquet) and merges into `RUN/metrics.json`: `<name>` (the same keys
as the BigDL LSTM's `test`) and `<name>_info` (engine, top-1 accuracy, the parity check against TensorFlow,
output kind, rewrites). When the run has a trained BigDL LSTM and no `test` metrics yet, it is evaluated too.
The `.bin` is read by Java deserialisation: pass only files from trusted locations.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from pipelines import openvino_ir
from pipelines.cli import add_tf_model_options, job_parser, report, run
from pipelines.context import get_or_create
from pipelines.errors import InputError
from pipelines.evaluation.metrics import binary_metrics
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.models.train import load_model, predict_scores
from pipelines.telemetry import sources
from pipelines.tfimport import files
from pipelines.tfimport.evaluate import predict_scores as predict_imported
from pipelines.tfimport.evaluate import top1_accuracy
from pipelines.tfimport.load import OUTPUT_KINDS, import_tensorflow_model
from pipelines.tfimport.parity import parity, parity_check, sample_batch

log = logging.getLogger(__name__)

PREDICTIONS_DIR = "predictions_tf"
COMPARE_KEYS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
ENGINES = ("bigdl", "openvino")

parser = job_parser(__doc__.splitlines()[0], sections=("windows", "evaluate"))
parser.add_argument("--windows", required=True, help="folder written by build_windows")
parser.reads("windows")
parser.add_argument("--run-dir", required=True, help="run folder; metrics.json is merged, predictions_tf/ written")
add_tf_model_options(parser)
parser.add_argument(
    "--output-kind",
    choices=OUTPUT_KINDS,
    default=None,
    help="what the output holds (default: read from its op: Softmax, LogSoftmax, Sigmoid)",
)
parser.add_argument("--name", default="tf_imported", help="key of the metrics in metrics.json")
parser.add_argument("--split", default="test", help="windows split to evaluate")
parser.add_argument(
    "--parity-samples",
    type=int,
    default=256,
    help="windows on which TensorFlow's own outputs are compared with BigDL's (0: no check)",
)
parser.add_argument("--batch-size", type=int, default=None, help="prediction batch size (default: evaluate.batch_size)")
parser.add_argument(
    "--engine",
    choices=ENGINES,
    default="bigdl",
    help="bigdl: the graph imported into BigDL; openvino: converted to OpenVINO IR (or --model an IR folder from "
    "export_openvino), scored on the executors by the OpenVINO runtime",
)
parser.writes("run_dir", PREDICTIONS_DIR + "/{name}")
parser.writes("run_dir", RunLayout.METRICS, mode="merge")


def evaluate_tf_run(
    spark,
    windows_root: str,
    run_dir: str,
    config,
    *,
    model: str,
    bin_path: str | None = None,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    output_kind: str | None = None,
    name: str = "tf_imported",
    split: str = "test",
    parity_samples: int = 256,
    batch_size: int | None = None,
    engine: str = "bigdl",
) -> dict:
    """Evaluate, write predictions, merge `name` and `name_info` into the run's metrics.json; returns the merge."""
    batch_size = batch_size or config.evaluate.batch_size
    threshold = config.evaluate.threshold
    for uri, what in ((model, "model"), (bin_path, "variable file")):
        if uri and not files.exists(uri, spark):
            raise InputError(f"{what} not found: {uri}")
    spec = sources.read_window_spec(spark, windows_root)
    length, n_features = spec.length, spec.n_features
    windows = sources.read_windows(spark, windows_root, split).select("device_id", "window_end", "features", "label")
    batch = sample_batch(windows, length=length, n_features=n_features, size=parity_samples)
    if engine == "openvino":
        if bin_path:
            raise InputError("--engine openvino takes a frozen graph (or an IR folder), not a .bin of variables")
        predictions, info = _openvino_predictions(
            spark, model, windows, batch, inputs, outputs, output_kind, length, n_features, batch_size
        )
    else:
        predictions, info = _bigdl_predictions(
            spark, model, bin_path, windows, batch, inputs, outputs, output_kind, length, n_features, batch_size
        )
    metrics = binary_metrics(predictions, threshold=threshold)
    info["top1_accuracy"] = top1_accuracy(predictions, info["output_kind"])
    with fs.atomic_output(spark, f"{run_dir}/{PREDICTIONS_DIR}/{name}") as tmp:
        predictions.write.parquet(tmp)
    predictions.unpersist()

    run = RunLayout(run_dir)
    blocks = {}
    if "test" not in run.read_metrics(spark) and split == "test" and fs.exists(spark, run.model):
        log.info("evaluating the run's BigDL LSTM too (%s)", run.model)
        lstm = predict_scores(
            load_model(run.model), windows, length=length, n_features=n_features, batch_size=batch_size
        )
        blocks["test"] = binary_metrics(lstm, threshold=threshold)
    blocks[name] = metrics
    blocks[f"{name}_info"] = {"model": model, "bin": bin_path, "split": split, "engine": engine, **info}
    return run.merge_metrics(spark, blocks)


def _bigdl_predictions(spark, model, bin_path, windows, batch, inputs, outputs, output_kind, length, n_features, size):
    imported = import_tensorflow_model(model, inputs, outputs, bin_path, spark=spark, output_kind=output_kind)
    predictions = predict_imported(imported, windows, length=length, n_features=n_features, batch_size=size).cache()
    return predictions, {
        "inputs": imported.inputs,
        "outputs": imported.outputs,
        "output_op": imported.output_op,
        "output_kind": imported.output_kind,
        "rewrites": imported.rewrites,
        "parity": parity_check(imported, model, batch, bin_uri=bin_path, spark=spark),
    }


def _openvino_predictions(spark, model, windows, batch, inputs, outputs, output_kind, length, n_features, size):
    ir = openvino_ir.ir_for(model, spark, inputs=inputs, outputs=outputs, output_kind=output_kind)
    keep = ("device_id", "window_end", "label")
    predictions = openvino_ir.score_windows(
        ir, windows, length=length, n_features=n_features, batch_size=size, keep=keep
    ).cache()
    check = (
        {"max_abs_diff": None, "samples": 0, "output_shape": None, "note": "an IR folder: no graph to compare"}
        if openvino_ir.is_ir_folder(model, spark)
        else parity(model, [ir.input_name], [ir.output_name], batch, lambda b: openvino_ir.predict(ir, b), spark=spark)
    )
    return predictions, {
        "inputs": [ir.input_name],
        "outputs": [ir.output_name],
        "output_kind": ir.output_kind,
        "precision": ir.precision,
        "parity": check,
    }


def comparison(merged: dict, name: str) -> str:
    rows = [
        (label, merged[key]) for key, label in (("test", "BigDL LSTM"), (name, f"imported ({name})")) if key in merged
    ]
    lines = [f"{'model':<26}" + "".join(f"{k:>10}" for k in COMPARE_KEYS)]
    for label, m in rows:
        lines.append(
            f"{label:<26}" + "".join(f"{'n/a' if m.get(k) is None else format(m[k], '.3f'):>10}" for k in COMPARE_KEYS)
        )
    return "\n".join(lines)


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="evaluate_tf")
    merged = evaluate_tf_run(
        spark,
        args.windows,
        args.run_dir,
        config,
        model=args.model,
        bin_path=args.bin,
        inputs=args.inputs,
        outputs=args.outputs,
        output_kind=args.output_kind,
        name=args.name,
        split=args.split,
        parity_samples=args.parity_samples,
        batch_size=args.batch_size,
        engine=args.engine,
    )
    info = merged[f"{args.name}_info"]
    report(comparison(merged, args.name))
    engine = "BigDL" if args.engine == "bigdl" else "OpenVINO"
    report(
        f"top-1 accuracy {info['top1_accuracy']}; parity: largest |TF - {engine}| = {info['parity']['max_abs_diff']} "
        f"on {info['parity']['samples']} windows"
    )


if __name__ == "__main__":
    sys.exit(run(main, parser))
