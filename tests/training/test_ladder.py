import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from vqagan_lib.errors import VQAGanError
from vqagan_lib.training.ladder import LADDER, ladder_config


@dataclass
class _Result:  # what ship() reads of a TrainResult
    checkpoint_path: Path


def test_every_point_parses_and_starts_from_a_point_that_exists():
    for name, point in LADDER.items():
        cfg = ladder_config(name)
        assert cfg.name == name
        assert point.init is None or point.init in LADDER
        if cfg.model.model == "fsq":  # the name's number is the budget: log2 of the codes it can send is at most that
            answers = cfg.model.answer_symbols or math.prod(cfg.model.answer_levels)
            ceiling = math.log2(answers * math.prod(cfg.model.geometry_levels))
            assert ceiling == pytest.approx(point.nominal_bits, abs=0.1), name
            assert ceiling <= float(name.split("-")[-1].removesuffix("bit")) + 0.1, name


def test_generators_start_from_their_own_answer_code():
    """From the answer stage of their code, or (generator.start 'codec') from a finished point of the same code and
    decoder with at least as many geometry digits, each of them with at least as many bins."""
    for name, point in LADDER.items():
        cfg = ladder_config(name)
        if cfg.stage != "generator":
            continue
        start = ladder_config(point.init)
        assert start.model.answer_levels == cfg.model.answer_levels, name
        if cfg.generator.start == "answer_code":
            assert start.stage == "answers", name
        else:
            assert start.stage == "generator" and start.model.decoder == cfg.model.decoder, name
            assert len(start.model.geometry_levels) >= len(cfg.model.geometry_levels), name
            assert all(a >= b for a, b in zip(start.model.geometry_levels, cfg.model.geometry_levels)), name


def test_ablations_share_the_code_and_differ_in_one_part():
    full = ladder_config("vqagan-8bit")
    no_vqa, no_stage1 = ladder_config("ablation-no-vqa-8bit"), ladder_config("ablation-no-stage1-8bit")
    for cfg in (no_vqa, no_stage1):
        assert cfg.model.answer_levels == full.model.answer_levels and cfg.stage == "joint"
    assert no_vqa.vqa.weight == 0 and no_stage1.vqa.weight > 0  # the only difference between the two
    assert ladder_config("ablation-continuous-6bit").model.model == "codec"


def test_every_ablation_is_measured_beside_a_point_of_ours_or_an_ablation_of_the_same_code():
    for name, point in LADDER.items():
        if point.role == "ablation":
            assert point.against in LADDER and LADDER[point.against].role in ("ours", "ablation"), name
            assert LADDER[point.against].dataset == point.dataset, name
            if LADDER[point.against].role == "ablation":  # then a matched pair: one code, one part switched
                assert ladder_config(point.against).model == ladder_config(name).model, name
        else:
            assert point.against is None, name


def test_scene_ablations_differ_from_their_point_in_one_part():
    full, no_vqa = ladder_config("scenes-64bit"), ladder_config("ablation-scenes-no-vqa-64bit")
    assert no_vqa.model == full.model and no_vqa.vqa.weight == 0 < full.vqa.weight
    assert ladder_config("ablation-scenes-no-vqa-96bit").vqa.weight == 0 < ladder_config("scenes-96bit").vqa.weight
    assert LADDER["ablation-scenes-no-vqa-64bit"].init == "ablation-scenes-no-vqa-96bit"  # pixels only, all the way
    assert LADDER["scenes-96bit"].init == "ablation-scenes-no-vqa-96bit"  # the critic tunes what the pixels found
    non_relational = ladder_config("ablation-scenes-non-relational-24bit")
    assert set(non_relational.data.question_types) == {"shape", "horizontal", "vertical"} and not full.data.question_types
    assert non_relational.vqa == full.vqa and non_relational.model.decoder == full.model.decoder
    coarse_no_vqa = ladder_config("ablation-scenes-no-vqa-24bit")  # the same coarse code on pixels alone
    assert coarse_no_vqa.model == non_relational.model and coarse_no_vqa.vqa.weight == 0 < non_relational.vqa.weight
    assert LADDER["ablation-scenes-no-vqa-24bit"].init == "ablation-scenes-no-vqa-96bit"


def test_at_least_five_rate_points_up_to_64_bits():
    budgets = [float(name.split("-")[-1].removesuffix("bit")) for name, p in LADDER.items() if p.role == "ours"]
    assert len(budgets) >= 5 and min(budgets) <= 5 and max(budgets) >= 64


def test_short_runs_still_reach_the_gan():
    cfg = ladder_config("ablation-no-vqa-8bit", steps=8)
    assert cfg.steps == 8 and cfg.gan.disc_start <= 2


def test_unknown_point_is_a_clear_error():
    with pytest.raises(VQAGanError, match="unknown ladder point"):
        ladder_config("vqagan-1bit")


def test_ship_copies_the_run_and_tags_its_card(tmp_path, monkeypatch):
    import json

    import torch

    from vqagan_lib.checkpoint import save_checkpoint
    from vqagan_lib.training import ladder

    run = save_checkpoint(tmp_path / "run" / "codec", {"w": torch.arange(3.0)}, {"name": "codec", "kind": "codec"})
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(ladder, "CHECKPOINT_DIR", shipped)
    result = ladder.ship(_Result(Path(run)), "vqagan-16bit")
    assert result.checkpoint_path == shipped / "vqagan-16bit.safetensors"
    assert result.checkpoint_path.read_bytes() == Path(run).read_bytes()
    card = json.loads((shipped / "vqagan-16bit.json").read_text())
    assert card["name"] == "vqagan-16bit" and card["ladder"]["role"] == "ours" and card["ladder"]["nominal_bits"] == LADDER["vqagan-16bit"].nominal_bits
    assert sorted(p.name for p in shipped.iterdir()) == ["vqagan-16bit.json", "vqagan-16bit.safetensors"]  # no temp left


def test_ship_writes_an_ablations_point_of_comparison_on_its_card(tmp_path, monkeypatch):
    import json

    import torch

    from vqagan_lib.checkpoint import save_checkpoint
    from vqagan_lib.training import ladder

    run = save_checkpoint(tmp_path / "run" / "codec", {"w": torch.arange(3.0)}, {"name": "codec", "kind": "codec"})
    monkeypatch.setattr(ladder, "CHECKPOINT_DIR", tmp_path)
    for name, against in (("ablation-scenes-no-vqa-64bit", "scenes-64bit"), ("scenes-64bit", None)):
        ladder.ship(_Result(Path(run)), name)
        assert json.loads((tmp_path / f"{name}.json").read_text())["ladder"].get("against") == against
