import shutil
from pathlib import Path

import pytest

from pipelines import CONF_DIR
from pipelines.config import ConfigError, PipelineConfig, TrainConfig, defaults, load_config


def _conf(tmp_path: Path, base: str, env: dict[str, str] | None = None) -> Path:
    """The repository's conf/base with `base` laid over it as one more base file, and `env` overlays."""
    shutil.copytree(CONF_DIR / "base", tmp_path / "base")
    (tmp_path / "base" / "zz-test.yml").write_text(base)
    for name, text in (env or {}).items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "telemetry.yml").write_text(text)
    return tmp_path


def test_repository_config_builds_with_every_env():
    base = load_config()
    assert isinstance(base, PipelineConfig)
    assert base.windows.length == 96 and base.windows.stride == 16
    ci = load_config(env="ci")
    assert ci.generate.devices < base.generate.devices
    assert ci.generate.models == base.generate.models  # untouched sections survive the overlay


def test_env_overlay_then_overrides_win(tmp_path):
    conf = _conf(tmp_path, "train:\n  epochs: 5\n  learning_rate: 0.01\n", {"prod": "train:\n  epochs: 9\n"})
    cfg = load_config(env="prod", conf_dir=conf)
    assert cfg.train.epochs == 9 and cfg.train.learning_rate == 0.01
    cfg = load_config(
        env="prod", overrides=["train.epochs=3", "train.learning_rate=1", "generate.gzip=true"], conf_dir=conf
    )
    assert cfg.train.epochs == 3
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
    assert cfg.generate.gzip is True
    assert cfg.train.hidden_size == 32  # default kept


def test_list_override(tmp_path):
    cfg = load_config(overrides=["train.class_weights=[1, 4.5]"], conf_dir=_conf(tmp_path, ""))
    assert cfg.train.class_weights == [1.0, 4.5]


@pytest.mark.parametrize(
    "base, overrides, message",
    [
        ("train:\n  epoch: 3\n", [], "train.epoch"),
        ("", ["train.epochz=3"], "train.epochz"),
        ("", ["nosuchsection.x=1"], "nosuchsection"),
        ("", ["train.epochs=three"], "train.epochs"),
        ("", ["train.epochs=true"], "train.epochs"),
        ("", ["generate.models=XS"], "generate.models"),
        ("", ["train.epochs"], "train.epochs"),
        ("", ["evaluate.peers=[gbt_window,forest]"], "evaluate: unknown peer 'forest'"),
        ("", ["evaluate.gbt_iterations=0"], "evaluate: gbt_iterations must be at least 1"),
        ("", ["alerting.model=forest"], "alerting: unknown model 'forest'"),
    ],
)
def test_unknown_keys_and_wrong_types_are_refused_by_name(tmp_path, base, overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(overrides=overrides, conf_dir=_conf(tmp_path, base))


def test_unknown_env_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="staging"):
        load_config(env="staging", conf_dir=_conf(tmp_path, ""))


def test_every_key_has_its_default_in_the_yaml_and_nowhere_else(tmp_path):
    conf = _conf(tmp_path, "")
    text = (conf / "base" / "telemetry.yml").read_text().replace("  epochs: 5\n", "", 1)
    (conf / "base" / "telemetry.yml").write_text(text)
    with pytest.raises(ConfigError, match=r"train\.epochs.*no value"):
        load_config(conf_dir=conf)
    with pytest.raises(TypeError):
        TrainConfig()  # type: ignore[call-arg]  # the dataclasses hold types, not defaults


def test_backblaze_train_is_the_train_section_with_its_own_keys(tmp_path):
    cfg = load_config(overrides=["train.engine=distri", "train.hidden_size=64"])
    assert cfg.backblaze.train.engine == "distri"  # inherited
    assert cfg.backblaze.train.hidden_size == 16  # set in backblaze.yml


def test_defaults_are_the_base_sections_with_changes():
    assert defaults(TrainConfig) == load_config().train
    assert defaults(TrainConfig, epochs=1).epochs == 1
    assert defaults(PipelineConfig) == load_config()
