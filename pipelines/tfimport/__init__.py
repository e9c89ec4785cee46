"""Frozen TensorFlow models in BigDL: inspect, rewrite TF2-era graphs to TF1 ops, export, load, evaluate, fine-tune.

    from pipelines.tfimport import load_tensorflow_model, import_tensorflow_model
    model = load_tensorflow_model("hdfs:///models/x/model.pb", bin_path="hdfs:///models/x/model.bin")

Modules: `graph` (inspection), `rewrite` (TF2 -> TF1 ops), `lstm` (unrolled LSTMs onto the fused layer),
`export` (TensorFlow side: .pb/.bin), `load` (into BigDL), `evaluate` (on windows, on the cluster), `parity`
(against TensorFlow), `transfer` (fine-tuning), `demo_step` (the demo's TensorFlow leg), `tfmodels` (small TF models).
Importing this package starts no JVM and does not import TensorFlow.
"""

from pipelines.tfimport.errors import (
    GraphFormatError,
    InputShapeError,
    NodeNameError,
    TFImportError,
    UnsupportedOpsError,
    VariableMismatchError,
)
from pipelines.tfimport.load import ImportedModel, import_tensorflow_model, load_tensorflow_model

__all__ = [
    "GraphFormatError",
    "ImportedModel",
    "InputShapeError",
    "NodeNameError",
    "TFImportError",
    "UnsupportedOpsError",
    "VariableMismatchError",
    "import_tensorflow_model",
    "load_tensorflow_model",
]
