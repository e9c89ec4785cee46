"""OpenVINO IR: export of a frozen Keras LSTM, parity with TensorFlow and BigDL, loading in a process with nothing but
openvino and numpy, scoring on the executors, and one-line errors for broken inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jobs import evaluate_tf, export_openvino
from pipelines import openvino_ir
from pipelines.cli import run
from pipelines.errors import InputError
from pipelines.tfimport import tfmodels
from pipelines.tfimport.export import freeze_keras
from pipelines.tfimport.load import forward, import_tensorflow_model
from pipelines.tfimport.parity import tensorflow_outputs
from tests.fixtures.windows import make_windows, write_windows_root

T, F = 12, 3
SETTINGS = ["--set", f"windows.length={T}", "--set", "windows.features=[a,b,c]", "--set", "evaluate.batch_size=64"]

FRESH_PROCESS = """
import json, sys
import numpy as np
import openvino as ov
x = np.load(sys.argv[2])
out = ov.Core().compile_model(sys.argv[1] + "/model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
np.save(sys.argv[3], out)
print(json.dumps(sorted(m for m in ("tensorflow", "pyspark", "pipelines", "bigdl") if m in sys.modules)))
"""


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("ov") / "lstm.pb"
    freeze_keras(tfmodels.keras_lstm(T, F, hidden=8, seed=5), str(path), for_bigdl=False)
    return str(path)


@pytest.fixture(scope="module")
def windows_root(spark, tmp_path_factory):
    return write_windows_root(spark, tmp_path_factory.mktemp("ovwin"))


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(1).standard_normal((33, T, F)).astype(np.float32)


def test_fp32_ir_computes_what_tensorflow_and_bigdl_compute(spark, graph, batch, tmp_path):
    code = run(export_openvino.main, export_openvino.parser, ["--model", graph, "--out", str(tmp_path / "ir")])
    assert code == 0
    info = json.loads((tmp_path / "ir" / "ir.json").read_text())
    assert info["precision"] == "FP32" and info["input_shape"] == [-1, T, F] and info["output_kind"] == "probabilities"
    assert info["files"]["model.bin"] == (tmp_path / "ir" / "model.bin").stat().st_size > 0
    ir = openvino_ir.load(spark, str(tmp_path / "ir"))
    expected = tensorflow_outputs(graph, [ir.input_name], [ir.output_name], batch)
    assert np.abs(openvino_ir.predict(ir, batch) - expected).max() < 1e-5
    bigdl = forward(import_tensorflow_model(graph, spark=spark), batch)
    assert np.abs(openvino_ir.predict(ir, batch) - bigdl).max() < 1e-4


def test_fp16_ir_halves_the_weights_and_stays_close(spark, graph, batch):
    fp32, fp16 = (openvino_ir.from_graph(graph, precision=p, spark=spark) for p in ("FP32", "FP16"))
    assert len(fp16.weights) < 0.6 * len(fp32.weights)
    diff = np.abs(openvino_ir.predict(fp16, batch) - openvino_ir.predict(fp32, batch)).max()
    assert 0 < diff < 1e-2  # FP16's rounding of the weights, reported by bench/score_throughput.py


def test_the_ir_loads_in_a_process_with_only_openvino_and_numpy(spark, graph, batch, tmp_path):
    ir = openvino_ir.from_graph(graph, spark=spark)
    openvino_ir.save(spark, ir, str(tmp_path / "ir"))
    np.save(tmp_path / "x.npy", batch)
    done = subprocess.run(
        [sys.executable, "-I", "-c", FRESH_PROCESS, str(tmp_path / "ir"), str(tmp_path / "x.npy"), str(tmp_path / "y")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == []  # none of TensorFlow, Spark, BigDL or this project was imported
    assert np.abs(np.load(tmp_path / "y.npy") - openvino_ir.predict(ir, batch)).max() < 1e-6


def test_windows_scored_on_the_executors_match_the_driver(spark, graph):
    ir = openvino_ir.from_graph(graph, spark=spark)
    windows = make_windows(spark, n=150).repartition(3)
    scored = openvino_ir.score_windows(ir, windows, length=T, n_features=F, batch_size=16, keep=("device_id", "label"))
    rows = scored.collect()
    assert len(rows) == 150 and scored.columns == ["device_id", "label", "score"]
    local = windows.select("features").collect()
    x = np.stack([np.asarray(r.features, np.float32).reshape(T, F) for r in local])
    expected = sorted(openvino_ir.predict(ir, x)[:, 1])
    assert np.abs(np.array(sorted(r.score for r in rows)) - np.array(expected)).max() < 1e-6


def test_evaluate_tf_with_openvino_gives_the_bigdl_figures(spark, graph, windows_root, tmp_path):
    run_dir = str(tmp_path / "run")
    common = ["--windows", windows_root, "--run-dir", run_dir, "--model", graph, *SETTINGS]
    assert run(evaluate_tf.main, evaluate_tf.parser, [*common, "--name", "bigdl"]) == 0
    assert run(evaluate_tf.main, evaluate_tf.parser, [*common, "--name", "ov", "--engine", "openvino"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["ov_info"]["engine"] == "openvino" and metrics["ov_info"]["parity"]["max_abs_diff"] < 1e-5
    assert metrics["ov"]["count"] == metrics["bigdl"]["count"] > 0
    assert metrics["ov"]["log_loss"] == pytest.approx(metrics["bigdl"]["log_loss"], abs=1e-5)
    scores = {
        name: {
            (r.device_id, r.window_end): r.score
            for r in spark.read.parquet(f"{run_dir}/predictions_tf/{name}").collect()
        }
        for name in ("bigdl", "ov")
    }
    assert scores["ov"].keys() == scores["bigdl"].keys()
    assert max(abs(scores["ov"][k] - scores["bigdl"][k]) for k in scores["ov"]) < 1e-5


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda ir: (ir / "model.xml").write_text("<net><layers>"), "not a readable OpenVINO IR"),
        (lambda ir: (ir / "model.bin").write_bytes(b"\0" * 8), "not a readable OpenVINO IR"),
        (lambda ir: (ir / "model.bin").unlink(), "no model.bin"),
        (lambda ir: (ir / "ir.json").write_text("{"), "not an IR description"),
    ],
)
def test_a_broken_ir_is_one_clear_error(spark, graph, tmp_path, damage, message):
    openvino_ir.save(spark, openvino_ir.from_graph(graph, spark=spark), str(tmp_path / "ir"))
    damage(tmp_path / "ir")
    with pytest.raises(InputError, match=message) as raised:
        openvino_ir.load(spark, str(tmp_path / "ir"))
    assert "\n" not in str(raised.value)


def test_wrong_names_and_an_unknown_output_kind_are_refused(spark, graph, tmp_path):
    with pytest.raises(Exception, match="no_such_node"):
        openvino_ir.from_graph(graph, inputs=["no_such_node"], spark=spark)
    with pytest.raises(InputError, match="precision must be one of FP32, FP16"):
        openvino_ir.from_graph(graph, precision="INT4", spark=spark)
    ir = openvino_ir.from_graph(graph, spark=spark)
    with pytest.raises(InputError, match=r"the IR takes windows of shape \[12, 3\]"):
        ir.check_window_shape(24, 3)


@pytest.mark.parametrize("layers, kind", [(1, "fused"), (2, "fused"), (1, "reference")])
def test_the_projects_bigdl_lstm_exports_through_its_tensorflow_twin(spark, batch, tmp_path, layers, kind):
    from pipelines.models.lstm import build_lstm
    from pipelines.models.train import save_model

    model = build_lstm(F, hidden_size=6, num_layers=layers, seed=3, kind=kind)
    model.evaluate()
    save_model(spark, model, str(tmp_path / "lstm.bigdl"))
    ir = openvino_ir.from_bigdl_lstm(str(tmp_path / "lstm.bigdl"), length=T)
    assert ir.output_kind == "log_probabilities" and ir.input_shape == [-1, T, F]
    assert np.abs(openvino_ir.predict(ir, batch) - np.asarray(model.forward(batch))).max() < 1e-5


def test_a_model_that_is_not_the_lstm_classifier_is_refused(spark, tmp_path):
    from bigdl.dllib.nn.layer import Linear, LogSoftMax, Sequential

    from pipelines.models.train import save_model

    save_model(spark, Sequential().add(Linear(F, 2)).add(LogSoftMax()), str(tmp_path / "mlp.bigdl"))
    with pytest.raises(InputError, match="not the project's LSTM classifier"):
        openvino_ir.from_bigdl_lstm(str(tmp_path / "mlp.bigdl"), length=T)
    with pytest.raises(InputError, match="not a BigDL model"):
        openvino_ir.from_bigdl_lstm(str(tmp_path / "nothing.bigdl"), length=T)
