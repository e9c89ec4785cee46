"""The BigDL report classifier: trained on de-identified text of one seed, compared with the rules on another."""

from __future__ import annotations

import json

from jobs.train_eeg_classifier import main, parser
from pipelines.cli import run
from tests.fixtures.eeg.archives import TRAIN, UNSEEN, archive


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


def test_help_lists_defaults():
    text = " ".join(parser.format_help().split())
    assert "--eval-archive" in text and "max_tokens=160" in text
