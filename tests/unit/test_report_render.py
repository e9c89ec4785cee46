"""The HTML report rendered from a run's figures (no Spark): every figure exists as a PNG and is referenced once."""

import struct

from pipelines.evaluation.report import FIGURES, honest_notes, render


def fake_run(*, with_alerting: bool = True, with_tf: bool = False) -> dict:
    """The data `report.collect` gathers, for a small made-up run."""
    metrics = {
        "test": {
            "roc_auc": 0.91,
            "pr_auc": 0.42,
            "precision": 0.3,
            "recall": 0.7,
            "f1": 0.42,
            "count": 500,
            "positives": 20,
        },
        "baseline": {
            "roc_auc": 0.71,
            "pr_auc": 0.12,
            "precision": 0.1,
            "recall": 0.5,
            "f1": 0.17,
            "count": 500,
            "positives": 20,
        },
    }
    if with_tf:
        metrics["tf_imported"] = {
            "roc_auc": 0.88,
            "pr_auc": 0.35,
            "precision": 0.2,
            "recall": 0.6,
            "f1": 0.3,
            "count": 500,
            "positives": 20,
        }
    curve = [
        {
            "bin": b,
            "lower": b / 10,
            "upper": (b + 1) / 10,
            "count": 50 - 4 * b,
            "mean_predicted": b / 10 + 0.05,
            "observed_rate": min(1.0, (b / 10 + 0.05) ** 1.5),
        }
        for b in range(10)
    ]
    if with_alerting:
        metrics["alerting"] = {
            "policy": "false_alarm_rate",
            "description": "platt calibration; alert at p >= 0.3 <script>x</script>",
            "calibration": "platt",
            "threshold": 0.3,
            "review_threshold": 0.1,
            "false_alarm_rate_per_device_day": 0.008,
            "recall": 0.75,
            "mean_lead_time_days": 3.5,
            "median_lead_time_days": 3.0,
            "lead_time": {"failed_devices": 4, "detected": 3, "missed": 1},
            "device_days": {"negative_device_days": 480, "positive_device_days": 20},
            "uncertain_device_days": 7,
            "confusion_matrix": {"tn": 470, "fp": 10, "fn": 6, "tp": 14},
            "validation": {"positive_device_days": 12},
            "reliability": {
                "raw": {"bins": 10, "ece": 0.2, "brier": 0.05, "curve": curve},
                "calibrated": {"bins": 10, "ece": 0.03, "brier": 0.04, "curve": curve},
            },
            "log_profile": {
                key: [
                    {
                        "lower": 10 ** (k / 4 - 6),
                        "upper": 10 ** ((k + 1) / 4 - 6),
                        "count": 1000 // (k + 1),
                        "positives": k // 6,
                        "mean_predicted": 10 ** ((k + 0.5) / 4 - 6) * (2 if key == "raw" else 1),
                    }
                    for k in range(24)
                ]
                for key in ("raw", "calibrated")
            },
            "operating_points": [
                {
                    "target_false_alarm_rate": 0.01,
                    "threshold": 0.3,
                    "false_alarm_rate_per_device_day": 0.008,
                    "recall": 0.75,
                    "mean_lead_time_days": 3.5,
                    "median_lead_time_days": 3.0,
                }
            ],
        }
    roc = {
        "fpr": [0.0, 0.1, 0.5, 1.0],
        "tpr": [0.0, 0.6, 0.9, 1.0],
        "recall": [0.6, 0.9, 1.0],
        "precision": [0.8, 0.3, 0.04],
        "thresholds": [0.9, 0.5, 0.0],
        "prevalence": [0.04],
    }
    return {
        "run_dir": "/runs/x",
        "generated": "2026-01-01 00:00 UTC",
        "metrics": metrics,
        "curves": {"lstm": roc, "baseline": roc},
        "training": {
            "source": "training.json",
            "train_loss": [[1, 0.7], [2, 0.5], [3, 0.4]],
            "validation": {
                "Loss": [[3, 0.45]],
                "Top1Accuracy": [[3, 0.9]],
                "roc_auc": [[1, 0.8]],
                "pr_auc": [[1, 0.3]],
            },
        },
        "lead_times": [
            {"device_id": "a", "lead_time_days": 2.0},
            {"device_id": "b", "lead_time_days": 3.0},
            {"device_id": "c", "lead_time_days": 5.5},
            {"device_id": "d", "lead_time_days": None},
        ],
        "risk": {
            "devices": 3,
            "by_band": {"alert": 1, "ok": 2},
            "scored_at": "2026-01-02",
            "top": [
                {
                    "device_id": "dev<1>",
                    "window_end": "2026-01-02",
                    "score": 0.9,
                    "probability": 0.6,
                    "band": "alert",
                    "reason": "p=0.6 >= 0.3",
                }
            ],
        },
        "notes": ["a note & more"],
    }


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_render_writes_every_figure_and_escapes_text(tmp_path):
    page = render(fake_run(with_tf=True), tmp_path).read_text()
    for name in FIGURES:
        width, height = png_size(tmp_path / "figures" / f"{name}.png")
        assert width > 200 and height > 200
        assert page.count(f'src="figures/{name}.png"') == 1
    assert "<script>" not in page and "&lt;script&gt;" in page and "dev&lt;1&gt;" in page
    assert "TF model imported into BigDL" in page and "0.880" in page
    assert "a note &amp; more" in page and "one device moves it by 25.0 points" in page


def test_render_without_alerting_or_tf_still_has_every_image(tmp_path):
    data = fake_run(with_alerting=False)
    data.update(training=None, lead_times=[], curves={}, risk=None)
    page = render(data, tmp_path).read_text()
    assert all((tmp_path / "figures" / f"{n}.png").stat().st_size > 1000 for n in FIGURES)
    assert "not part of this run" in page


def test_honest_notes_follow_the_counts():
    notes = " ".join(honest_notes(fake_run()))
    assert "4 failed devices" in notes and "480 healthy device-days" in notes and "12 positive device-days" in notes
