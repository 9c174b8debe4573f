"""Damaged checkpoint cards are one clear line (issue #15 item 8), never a traceback."""
import dataclasses
import json

import pytest
import torch

from vqagan_lib.apps.cli import main
from vqagan_lib.checkpoint import list_checkpoints, load_card, load_checkpoint, save_checkpoint
from vqagan_lib.config import ConfigError, from_dict
from vqagan_lib.errors import VQAGanError


def saved(tmp_path, card_json=None):
    path = save_checkpoint(tmp_path / "m", {"w": torch.zeros(2)}, {"name": "m", "kind": "codec"})
    if card_json is not None:
        path.with_suffix(".json").write_text(card_json)
    return path


@pytest.mark.parametrize("card_json, problem", [
    ("[1, 2]", "must be a JSON object, not a list"),
    ('"codec"', "must be a JSON object, not a str"),
    ("null", "must be a JSON object, not a NoneType"),
    ('{"name": "m"}', "needs a 'kind' string"),
    ('{"name": "m", "kind": 3}', "needs a 'kind' string"),
    ('{"name": 7, "kind": "codec"}', "'name' must be a string"),
    ('{"name": "m", "kind": "codec", "config": [4]}', "'config' must be a JSON object, not a list"),
    ('{"name": "m", "kind": "codec", "config": "big"}', "'config' must be a JSON object, not a str"),
    ("{nope", "not valid JSON"),
])
def test_a_card_that_is_not_a_card_object_is_refused(tmp_path, card_json, problem):
    path = saved(tmp_path, card_json)
    with pytest.raises(VQAGanError, match=problem) as e:
        load_checkpoint(path)
    assert str(path.with_suffix(".json")) in str(e.value)
    with pytest.raises(VQAGanError, match=problem):
        list_checkpoints(tmp_path)


def test_a_card_that_is_not_utf8_or_not_a_file_is_refused(tmp_path):
    path = saved(tmp_path)
    path.with_suffix(".json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(VQAGanError, match="not UTF-8"):
        load_card(path)
    path.with_suffix(".json").unlink()
    path.with_suffix(".json").mkdir()
    with pytest.raises(VQAGanError, match="not a regular file"):
        load_card(path)


@dataclasses.dataclass
class Inner:
    levels: tuple[int, ...] = (8, 6)
    betas: tuple[float, float] = (0.5, 0.9)


@dataclasses.dataclass
class Config:
    latent_dim: int = 4
    gain: float = 1.0
    name: str = "a"
    flag: bool = False
    critic: str | None = None
    inner: Inner = dataclasses.field(default_factory=Inner)


@pytest.mark.parametrize("data, field", [
    ({"latent_dim": "four"}, "config.latent_dim: expected int"),
    ({"latent_dim": 4.5}, "config.latent_dim: expected int"),
    ({"latent_dim": True}, "config.latent_dim: expected int"),
    ({"gain": "1"}, "config.gain: expected float"),
    ({"flag": 1}, "config.flag: expected bool"),
    ({"name": None}, "config.name: expected str"),
    ({"critic": 3}, "config.critic: expected"),
    ({"inner": [1]}, "config.inner: expected a JSON object"),
    ({"inner": {"levels": [8, "x"]}}, r"config.inner.levels\[1\]: expected int"),
    ({"inner": {"betas": [0.5]}}, "config.inner.betas: expected 2 values"),
    ([], "config: expected a JSON object"),
])
def test_config_fields_are_checked_against_their_types(data, field):
    with pytest.raises(ConfigError, match=field):
        from_dict(Config, data)


def test_config_from_json_keeps_its_types_and_ignores_retired_fields():
    cfg = from_dict(Config, {"gain": 2, "critic": None, "inner": {"levels": [3, 3]}, "retired": 1})
    assert cfg == Config(gain=2.0, inner=Inner(levels=(3, 3))) and isinstance(cfg.gain, float)


def test_a_codec_card_with_a_bad_config_is_one_line_naming_the_file(tmp_path, capsys):
    from codec_helpers import tiny_codec

    from vqagan_lib.models.codec import load_codec, save_codec

    path = save_codec(tiny_codec(fit_steps=2), tmp_path / "tiny", {"name": "tiny"})
    card = json.loads(path.with_suffix(".json").read_text())
    card["config"]["latent_dim"] = "six"
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(VQAGanError, match=r"tiny.*latent_dim: expected int"):
        load_codec(path)
    assert main(["compress", "a.png", "--model", str(path), "-o", str(tmp_path / "o.vqg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "latent_dim" in err


def test_a_critic_card_with_a_bad_config_names_the_file(tmp_path):
    from vqagan_lib.answerers.critic import load_critic
    from vqagan_lib.runtime import CHECKPOINT_DIR

    card = json.loads((CHECKPOINT_DIR / "critic-easyvqa.json").read_text())
    card["config"]["dim"] = "wide"
    (tmp_path / "critic.safetensors").write_bytes((CHECKPOINT_DIR / "critic-easyvqa.safetensors").read_bytes())
    (tmp_path / "critic.json").write_text(json.dumps(card))
    with pytest.raises(VQAGanError, match=r"critic.*card config.dim: expected int"):
        load_critic(str(tmp_path / "critic"))
