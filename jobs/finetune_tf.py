"""Fine-tune an imported TensorFlow model on the windows (the project's training engine), save it, evaluate it.

    python -m jobs.finetune_tf --windows OUT/windows --run-dir OUT/run --model M.pb [--bin M.bin] \
        [--head replace|append] [--freeze PREFIX ...] [--epochs N]

Trains on the train split (validating on val every epoch), saves `RUN/model/tf_finetuned.bigdl` (BigDL's
format), writes `RUN/finetune.json` and merges `<name>` (same keys as `test`) into `RUN/metrics.json`.
A frozen `.pb` has no variables: only the new head learns. `--freeze` prefixes turn the matching variables
of a `.pb` + `.bin` into constants. The `.bin` is read by Java deserialisation: trusted locations only.
"""

from __future__ import annotations

import logging
import sys

from pipelines.cli import add_tf_model_options, job_parser, run
from pipelines.context import get_or_create
from pipelines.errors import InputError
from pipelines.io import fs
from pipelines.layout import RunLayout
from pipelines.telemetry import sources
from pipelines.tfimport import files
from pipelines.tfimport.evaluate import evaluate_imported
from pipelines.tfimport.transfer import TransferSpec, fine_tune, save

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0], sections=("windows", "train", "evaluate"))
parser.add_argument("--windows", required=True, help="folder written by build_windows")
parser.reads("windows")
parser.add_argument("--run-dir", required=True, help="run folder")
add_tf_model_options(
    parser,
    model_help="TensorFlow graph (.pb), any Hadoop URI",
    inputs_help="comma-separated input node names",
    outputs_help="comma-separated output node names",
)
parser.add_argument(
    "--head",
    choices=("replace", "append"),
    default="replace",
    help="replace: cut before the last dense layer; append: add a layer after the output",
)
parser.add_argument("--feature-node", default=None, help="node to cut at with --head replace (default: found)")
parser.add_argument("--freeze", nargs="*", default=[], help="variable-name prefixes to freeze ('*': all)")
parser.add_argument("--epochs", type=int, default=None, help="default: train.epochs")
parser.add_argument(
    "--learning-rate", type=float, default=None, help="Adam's learning rate (default: train.learning_rate)"
)
parser.add_argument("--batch-size", type=int, default=None, help="default: train.batch_size")
parser.add_argument("--name", default="tf_finetuned", help="key of the test metrics in metrics.json")
parser.writes("run_dir", RunLayout.TF_FINETUNED, RunLayout.FINETUNE_RECORD, mode="overwrite")
parser.writes("run_dir", RunLayout.SUMMARIES, mode="append")
parser.writes("run_dir", RunLayout.METRICS, mode="merge")


def finetune_run(
    spark,
    windows_root: str,
    run_dir: str,
    config,
    spec: TransferSpec,
    *,
    epochs: int | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    name: str = "tf_finetuned",
) -> dict:
    run = RunLayout(run_dir)
    for uri, what in ((spec.pb_uri, "model"), (spec.bin_uri, "variable file")):
        if uri and not files.exists(uri, spark):
            raise InputError(f"{what} not found: {uri}")
    shape = sources.read_window_spec(spark, windows_root)
    length, n_features = shape.length, shape.n_features
    result = fine_tune(
        spark,
        spec,
        sources.read_windows(spark, windows_root, "train"),
        sources.read_windows(spark, windows_root, "val"),
        length=length,
        n_features=n_features,
        epochs=epochs or config.train.epochs,
        batch_size=batch_size or config.train.batch_size,
        learning_rate=learning_rate or config.train.learning_rate,
        class_weights=config.train.class_weights,
        summary_dir=run.summaries,
    )
    save(spark, result.model, run.tf_finetuned)
    test = sources.read_windows(spark, windows_root, "test")
    metrics, predictions = evaluate_imported(
        result.imported,
        test,
        length=length,
        n_features=n_features,
        batch_size=config.evaluate.batch_size,
        threshold=config.evaluate.threshold,
    )
    predictions.unpersist()
    record = {
        "model": spec.pb_uri,
        "bin": spec.bin_uri,
        "head": spec.head,
        "feature_node": result.feature_node,
        "frozen": result.frozen,
        "trainable": result.trainable,
        "batch_size": result.batch_size,
        "train_loss": result.train_loss,
        "validation": result.validation,
    }
    fs.write_json(spark, run.path(RunLayout.FINETUNE_RECORD), record)
    run.merge_metrics(spark, {name: metrics})
    return {"metrics": metrics, **record}


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="finetune_tf")
    spec = TransferSpec(
        pb_uri=args.model,
        bin_uri=args.bin,
        inputs=args.inputs,
        outputs=args.outputs,
        head=args.head,
        feature_node=args.feature_node,
        freeze=tuple(args.freeze),
    )
    out = finetune_run(
        spark,
        args.windows,
        args.run_dir,
        config,
        spec,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        name=args.name,
    )
    log.info("fine-tuned model: %s; test PR-AUC %s", RunLayout(args.run_dir).tf_finetuned, out["metrics"]["pr_auc"])


if __name__ == "__main__":
    sys.exit(run(main, parser))
