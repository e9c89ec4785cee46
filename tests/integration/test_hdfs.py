"""The telemetry chain reading and writing hdfs:// URIs on the development HDFS (infra/hdfs.sh)."""

import pytest

from pipelines.chain import evaluate_run, train_run
from pipelines.config import load_config
from pipelines.io import fs
from pipelines.telemetry import sources
from pipelines.telemetry.generate import generate_fleet
from pipelines.telemetry.ingest import ingest
from pipelines.telemetry.schema import WindowSpec
from pipelines.telemetry.windows import build_window_dataset

pytestmark = [pytest.mark.slow, pytest.mark.hdfs]


def test_telemetry_chain_on_hdfs(spark, hdfs, tmp_path):
    root = f"{hdfs}/tests/{tmp_path.name}"
    config = load_config(
        env="ci", overrides=["generate.devices=16", "generate.days=8", "train.epochs=1", "train.hidden_size=8"]
    )
    generate_fleet(spark, config.generate, f"{root}/fleet")
    counts = ingest(spark, f"{root}/fleet", f"{root}/ingest", config.ingest)
    assert counts["read"] == counts["clean"] + counts["quarantined"] > 0
    assert fs.read_json(spark, f"{root}/ingest/counts.json") == counts

    windows, stats = build_window_dataset(
        sources.read_parquet(spark, f"{root}/ingest/clean", "clean readings"),
        sources.read_failures(spark, f"{root}/fleet/failures.csv"),
        config=config.windows,
        interval_minutes=config.ingest.interval_minutes,
    )
    sources.write_windows(spark, windows, stats, f"{root}/windows", spec=WindowSpec.of(config))
    assert fs.exists(spark, f"{root}/windows/_SUCCESS")

    run_dir = f"{root}/run"
    training = train_run(spark, config, windows=f"{root}/windows", run_dir=run_dir)
    assert training["epochs"] == 1
    assert any(
        name.startswith("model.")
        for folder in fs.list_dir(spark, f"{run_dir}/checkpoints")
        for name in fs.list_dir(spark, f"{run_dir}/checkpoints/{folder}")
    )
    metrics = evaluate_run(spark, config, windows=f"{root}/windows", run_dir=run_dir)
    assert fs.read_json(spark, f"{run_dir}/metrics.json")["test"] == metrics["test"]
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    fs.delete(spark, root)
