"""Batch-size study bookkeeping: arms, time to the target validation loss, the table."""

import pytest

from pipelines.config import ConfigError, StudyConfig, defaults, load_config
from pipelines.models import study


def _row(arm, batch, losses, seconds):
    return {
        "arm": arm,
        "batch_size": batch,
        "val_loss": losses,
        "epoch_seconds": seconds,
        "iterations": 10,
        "peak_learning_rate": 0.1,
        "test_pr_auc": 0.5,
        "test_roc_auc": 0.8,
        "wall_s": sum(seconds),
    }


def test_time_to_target_defaults_to_five_percent_above_the_reference_best():
    rows = study.add_time_to_target(
        [
            _row("sgd_fixed", 64, [0.6, 0.4, 0.3], [10, 10, 10]),
            _row("sgd_fixed", 4096, [0.69, 0.6, 0.5], [2, 2, 2]),
            _row("adam_fixed", 4096, [0.5, 0.31, 0.35], [3, 4, 5]),
        ],
        None,
    )
    assert rows[0]["target_val_loss"] == pytest.approx(0.315)
    assert (rows[0]["epochs_to_target"], rows[0]["seconds_to_target"]) == (3, 30)
    assert rows[1]["epochs_to_target"] is None and rows[1]["seconds_to_target"] is None
    assert (rows[2]["epochs_to_target"], rows[2]["seconds_to_target"]) == (2, 7)
    table = study.markdown_table(rows)
    assert "| sgd_fixed | 4096 |" in table and "not reached" in table and "0.315" in table


def test_arms_scale_the_rate_only_where_they_say():
    config = defaults(StudyConfig)
    assert study.arm_settings(config, "sgd_fixed")["optimizer"] == "sgd"
    assert "lr_scaling" not in study.arm_settings(config, "sgd_fixed")
    assert study.arm_settings(config, "lars_linear_warmup")["lr_scaling"] == "linear"
    with pytest.raises(ConfigError, match="study: unknown arm 'sgd_cosine'"):
        load_config(overrides=["study.arms=[sgd_fixed, sgd_cosine]"])
