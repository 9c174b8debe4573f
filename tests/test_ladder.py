import pytest

from vqagan_lib.errors import VQAGanError
from vqagan_lib.ladder import BASE, LADDER, ladder_config


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
