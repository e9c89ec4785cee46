"""Summarise a frozen TensorFlow graph: inputs, candidate outputs, ops, variables, what BigDL cannot load.

    python -m jobs.inspect_tf MODEL.pb [--inputs NAME] [--outputs NAME] [--json] [--strict]

Local paths need no Spark; other Hadoop URIs (hdfs://, s3a://) start a session to read the file.
With --strict the exit code is 1 when BigDL cannot load the graph even after rewriting.
"""

from __future__ import annotations

import json
import logging
import sys

from pipelines.cli import job_parser, report, run
from pipelines.errors import InputError
from pipelines.tfimport import files
from pipelines.tfimport import graph as g
from pipelines.tfimport.errors import TFImportError
from pipelines.tfimport.load import read_graph
from pipelines.tfimport.rewrite import rewrite_for_bigdl

log = logging.getLogger(__name__)

parser = job_parser(__doc__.splitlines()[0])
parser.add_argument("model", help="frozen GraphDef (.pb), any Hadoop URI")
parser.add_argument("--inputs", default=None, help="comma-separated input node names (default: the one placeholder)")
parser.add_argument("--outputs", default=None, help="comma-separated output node names (default: the one candidate)")
parser.add_argument("--json", action="store_true", help="print the summary as JSON")
parser.add_argument("--strict", action="store_true", help="exit 1 when BigDL cannot load the graph after rewriting")
parser.reads("model")


class NotLoadable(InputError):
    """--strict and the graph keeps ops BigDL cannot load."""


def inspect(
    model_uri: str, inputs: list[str] | None = None, outputs: list[str] | None = None, spark=None
) -> g.GraphSummary:
    """The graph summary, with the rewrite's result when inputs and outputs can be resolved."""
    graph_def = read_graph(model_uri, spark)
    summary = g.summarize(graph_def)
    try:
        ins, outs = g.resolve_names(graph_def, inputs, outputs)
    except TFImportError as e:
        log.warning("not rewriting: %s", e)
        return summary
    _, report = rewrite_for_bigdl(graph_def, inputs=ins, outputs=outs, strict=False)
    summary.rewrites = {k: v for k, v in report.counts.items() if v}
    summary.unsupported_after_rewrite = report.unsupported
    return summary


def main(args, config) -> None:
    spark = None
    if not files.is_local(args.model):
        from pipelines.context import get_or_create

        spark = get_or_create(master=args.master, app_name="inspect_tf")
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()] if s else None  # noqa: E731
    summary = inspect(args.model, split(args.inputs), split(args.outputs), spark)
    report(json.dumps(summary.to_dict(), indent=2, sort_keys=True) if args.json else summary.format())
    remaining = (
        summary.unsupported_after_rewrite if summary.unsupported_after_rewrite is not None else summary.unsupported
    )
    if args.strict and remaining:
        raise NotLoadable(
            f"BigDL cannot load {sum(map(len, remaining.values()))} node(s): {', '.join(sorted(remaining))}"
        )


if __name__ == "__main__":
    sys.exit(run(main, parser))
