import dataclasses
import json

import pytest
import torch

from vqagan_lib.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from vqagan_lib.config import apply_overrides, as_flags, from_dict, to_dict
from vqagan_lib.errors import VQAGanError


@dataclasses.dataclass
class Inner:
    weight: float = 1.0
    name: str = "a"
    betas: tuple[float, float] = (0.5, 0.9)


@dataclasses.dataclass
class Outer:
    steps: int = 10
    flag: bool = False
    critic: str | None = None
    gan: Inner = dataclasses.field(default_factory=Inner)


def test_overrides_walk_nesting_and_parse_types():
    cfg = apply_overrides(Outer(), ["--gan.weight", "0.1", "--steps=5", "--flag", "true", "--gan.betas", "[0.0, 0.99]",
                                    "--critic", "none"])
    assert cfg.gan.weight == 0.1 and cfg.steps == 5 and cfg.flag is True
    assert cfg.gan.betas == (0.0, 0.99) and cfg.critic is None
    assert from_dict(Outer, json.loads(json.dumps(to_dict(cfg)))) == cfg


@pytest.mark.parametrize("args", [["--gan.wieght", "1"], ["--steps", "ten"], ["--steps"]])
def test_bad_overrides_fail_loudly(args):
    with pytest.raises(VQAGanError):
        apply_overrides(Outer(), args)


def test_checkpoint_round_trip_and_card(tmp_path):
    path = save_checkpoint(tmp_path / "m", {"w": torch.arange(4.0)}, {"name": "m", "kind": "codec", "seed": 3})
    tensors, card = load_checkpoint(tmp_path / "m.safetensors", expected_kind="codec")
    assert torch.equal(tensors["w"], torch.arange(4.0))
    assert card["seed"] == 3 and len(card["weights_sha256"]) == 64 and card["size_bytes"] == path.stat().st_size
    assert [c["name"] for c in list_checkpoints(tmp_path)] == ["m"]


def test_checkpoint_refuses_wrong_kind_pickle_and_garbage(tmp_path):
    save_checkpoint(tmp_path / "m", {"w": torch.zeros(1)}, {"name": "m", "kind": "critic"})
    with pytest.raises(VQAGanError, match="expected a 'codec'"):
        load_checkpoint(tmp_path / "m", expected_kind="codec")
    with pytest.raises(VQAGanError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "m.pt")
    (tmp_path / "m.safetensors").write_bytes(b"\x80\x04garbage")
    with pytest.raises(VQAGanError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "m")
    with pytest.raises(VQAGanError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nothing")


def test_atomic_write_gives_normal_permissions_and_leaves_no_temp(tmp_path):
    import os

    from vqagan_lib.fileio import atomic_write_bytes

    atomic_write_bytes(tmp_path / "f.bin", b"abc")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_as_flags_is_the_command_line_form_apply_overrides_reads():
    from vqagan_lib.training.engine import TrainConfig

    changes = {"gan.weight": 0.5, "rate.target": None, "optim.betas": (0.5, 0.9), "model.latent_dim": 8, "data.name": "easyvqa"}
    assert as_flags({"gan.weight": 0.5, "rate.target": None})[:4] == ["--gan.weight", "0.5", "--rate.target", "none"]
    cfg = apply_overrides(TrainConfig(), as_flags(changes))
    assert (cfg.gan.weight, cfg.rate.target, cfg.optim.betas, cfg.model.latent_dim) == (0.5, None, (0.5, 0.9), 8)
