"""Export a frozen TensorFlow graph or the project's BigDL LSTM to OpenVINO IR (model.xml, model.bin, ir.json).

    python -m jobs.export_openvino --model M.pb --out OUT/ir [--precision FP16]
    python -m jobs.export_openvino --model RUN/model/lstm.bigdl --length 96 --out OUT/ir

A BigDL LSTM (as train_lstm saves it) goes through the equivalent TensorFlow graph built from its weights, for
windows of --length steps.

The IR loads anywhere OpenVINO runs, with nothing else but numpy (see pipelines/openvino_ir.py);
`evaluate_tf --engine openvino` scores windows with it on the cluster.
"""

from __future__ import annotations

import logging
import sys

from pipelines import openvino_ir
from pipelines.cli import job_parser, node_names, report, run
from pipelines.context import get_or_create
from pipelines.models.stages import OUTPUT_KINDS

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0])
parser.add_argument(
    "--model", required=True, help="frozen TensorFlow graph (.pb) or a BigDL LSTM from train_lstm; any Hadoop URI"
)
parser.add_argument("--length", type=int, default=None, help="a BigDL LSTM: the windows' length (steps)")
parser.add_argument("--out", required=True, help="IR folder (any Hadoop URI); replaced atomically")
parser.add_argument("--precision", choices=openvino_ir.PRECISIONS, default="FP32", help="weights' precision")
parser.add_argument("--inputs", default=None, type=node_names, help="input node name (default: the one placeholder)")
parser.add_argument("--outputs", default=None, type=node_names, help="output node name (default: the one candidate)")
parser.add_argument(
    "--output-kind", choices=OUTPUT_KINDS, default=None, help="what the output holds (default: from its op)"
)
parser.reads("model")
parser.writes("out")


def main(args, config) -> None:
    spark = get_or_create(master=args.master, app_name="export_openvino")
    if args.model.endswith(".pb"):
        ir = openvino_ir.from_graph(
            args.model,
            precision=args.precision,
            inputs=args.inputs,
            outputs=args.outputs,
            output_kind=args.output_kind,
            spark=spark,
        )
    else:
        ir = openvino_ir.from_bigdl_lstm(args.model, length=args.length or 0, precision=args.precision)
    info = openvino_ir.save(spark, ir, args.out)
    report(
        f"{args.out}: {info['precision']} IR, input {info['input']} {info['input_shape']}, output {info['output']} "
        f"({info['output_kind']}); " + ", ".join(f"{name} {size:,} bytes" for name, size in info["files"].items())
    )


if __name__ == "__main__":
    sys.exit(run(main, parser))
