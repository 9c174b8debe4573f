from dataclasses import dataclass
from pathlib import Path

import pytest

from vqagan_lib.errors import VQAGanError
from vqagan_lib.training.ladder import BASE, LADDER, ladder_config


@dataclass
class _Result:  # what ship() reads of a TrainResult
    checkpoint_path: Path


def test_every_point_has_a_config_with_its_terms():
    for name, point in LADDER.items():
        cfg = ladder_config(name)
        assert cfg.name == name and cfg.rate.target == point.target_bits
        assert (cfg.gan.weight > 0) == point.gan and (cfg.vqa.weight > 0) == point.vqa
        assert cfg.rate.target_start >= cfg.rate.target


def test_ablations_match_the_lowest_point_but_for_their_terms():
    lowest = min((n for n, p in LADDER.items() if p.role == "ours"), key=lambda n: LADDER[n].target_bits)
    full = ladder_config(lowest)
    for name, point in LADDER.items():
        if point.role != "ablation":
            continue
        cfg = ladder_config(name)
        assert cfg.rate == full.rate and cfg.model == full.model and cfg.optim == full.optim and cfg.steps == full.steps
        assert (cfg.gan.weight, cfg.vqa.weight) != (full.gan.weight, full.vqa.weight)


def test_at_least_four_rate_points_and_a_base():
    assert sum(p.role == "ours" for p in LADDER.values()) >= 4
    assert LADDER[BASE].role == "base"


def test_unknown_point_is_a_clear_error():
    with pytest.raises(VQAGanError, match="unknown ladder point"):
        ladder_config("vqagan-1bit")


def test_ship_copies_the_run_and_tags_its_card(tmp_path, monkeypatch):
    import json

    import torch

    from vqagan_lib.training import ladder
    from vqagan_lib.checkpoint import save_checkpoint

    run = save_checkpoint(tmp_path / "run" / "codec", {"w": torch.arange(3.0)}, {"name": "codec", "kind": "codec"})
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(ladder, "CHECKPOINT_DIR", shipped)
    result = ladder.ship(_Result(Path(run)), "vqagan-24bit")
    assert result.checkpoint_path == shipped / "vqagan-24bit.safetensors"
    assert result.checkpoint_path.read_bytes() == Path(run).read_bytes()
    card = json.loads((shipped / "vqagan-24bit.json").read_text())
    assert card["name"] == "vqagan-24bit" and card["ladder"] == {"role": "ours", "target_bits": 24,
                                                                 "setting": "full recipe, target 24 bits/image"}
    assert sorted(p.name for p in shipped.iterdir()) == ["vqagan-24bit.json", "vqagan-24bit.safetensors"]  # no temp left
