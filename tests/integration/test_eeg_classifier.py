"""The BigDL report classifier: trained on de-identified text of one seed, compared with the rules on another."""

from __future__ import annotations

import json

from jobs.train_eeg_classifier import main, parser
from pipelines.cli import run
from pipelines.config import EegClassifierConfig, defaults
from pipelines.eeg import classifier, curate
from pipelines.models.train import load_model
from tests.fixtures.eeg.archives import TRAIN, UNSEEN, archive
from tests.unit.test_eeg_handwritten import handwritten


def test_classifier_trains_on_deidentified_text_and_is_compared_with_rules(spark, tmp_path_factory, monkeypatch):
    train = archive(spark, tmp_path_factory, TRAIN)
    unseen = archive(spark, tmp_path_factory, UNSEEN)
    out = tmp_path_factory.mktemp("classifier") / "model"
    monkeypatch.setenv("EEG_DEID_KEY", "classifier-test-key-0123456789")
    code = run(main, parser, ["--archive", str(train), "--eval-archive", str(unseen), "--out", str(out), "--env", "ci"])
    assert code == 0
    assert (out / "classifier.model").exists() and len(json.loads((out / "vocabulary.json").read_text())) > 100
    summary = json.loads((out / "classifier.json").read_text())
    evaluation = summary["evaluation"]
    assert evaluation["reports"] > 40
    for task in ("abnormal", "seizure_present"):
        assert set(evaluation[task]) == {"classifier", "rules", "positives"}
        assert evaluation[task]["rules"]["precision"] >= 0.9
    # Few reports and few epochs in a test: the classifier must rank better than chance, not beat the rules.
    assert evaluation["abnormal"]["classifier"]["roc_auc"] > 0.7
    _score_handwritten(spark, out, summary)


def _score_handwritten(spark, out, summary) -> None:
    """The trained classifier on the hand-written reports (de-identified, as it was trained): figures printed."""
    cfg = defaults(EegClassifierConfig, **summary["config"])
    reports = handwritten()
    rows = spark.createDataFrame(
        [(name, name, text) for name, text, _ in reports], "report_id string, path string, text string"
    )
    texts = curate.deidentified_texts(rows, key=b"classifier-test-key-0123456789", max_shift_days=365)
    vocabulary = json.loads((out / "vocabulary.json").read_text())
    scored = {
        r["report_id"]: r
        for r in classifier.predict(load_model(str(out / "classifier.model")), vocabulary, texts, cfg).collect()
    }
    assert len(scored) == len(reports)
    print(f"\nreport classifier on {len(reports)} hand-written reports (threshold {cfg.threshold}):")
    for task in classifier.TASKS:
        truth = {name: bool(t[task]) for name, _, t in reports}
        predicted = {name: scored[name][f"p_{task}"] >= cfg.threshold for name in truth}
        assert all(0.0 <= scored[name][f"p_{task}"] <= 1.0 for name in truth)
        tp = sum(predicted[n] and truth[n] for n in truth)
        p, t = sum(predicted.values()), sum(truth.values())
        print(
            f"  {task}: precision {tp / p if p else None}, recall {tp / t if t else None} (tp {tp}, predicted {p}, true {t})"
        )


def test_help_lists_defaults():
    text = " ".join(parser.format_help().split())
    assert "--eval-archive" in text and "max_tokens=160" in text
