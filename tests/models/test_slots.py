"""The scene code (models/slots.py): slots seeded from the data, drawn where their digits say, coded exactly."""
import numpy as np
import pytest
import torch

from vqagan_lib.coding.bitstream import pack, parse, unpack_symbols
from vqagan_lib.coding.images import to_pixels
from vqagan_lib.data import sort_of_clevr
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models import slots
from vqagan_lib.models.codec import CodecConfig, build_model
from vqagan_lib.data.colour_objects import find_by_colour
from vqagan_lib.training.batches import DataConfig
from vqagan_lib.training.engine import TrainConfig, train

SCENE_LEVELS = (3, 8, 8) * 6  # per slot: one appearance digit, x, y


def scene_codec(**kw):
    settings = dict(model="fsq", decoder="slots", slots=6, answer_levels=SCENE_LEVELS, answer_coding="digits",
                    channels=16, encoder_channels=8)
    return build_model(CodecConfig(**{**settings, **kw}))


def test_slots_start_on_the_colours_of_the_training_scenes_and_find_their_objects():
    scenes = sort_of_clevr.generate_scenes(64, seed=5)
    images = sort_of_clevr.render(scenes)
    codec = scene_codec()
    codec.seed_from_data(images)
    palette = torch.tensor([sort_of_clevr.PALETTE[c] for c in sort_of_clevr.COLORS]).float() / 255
    slot_colours = (codec.answer_encoder.colours + 1) / 2  # (6,3): the encoder's, in [0,1]
    nearest = torch.cdist(slot_colours, palette).argmin(dim=1)
    assert sorted(nearest.tolist()) == list(range(6))  # one slot per colour, none told the palette
    assert torch.cdist(slot_colours, palette).min(dim=1).values.max() < 0.03
    decoder_colours = torch.sigmoid(codec.decoder.colours)
    assert torch.allclose(decoder_colours, slot_colours.clamp(0.02, 0.98), atol=1e-5)  # both sides agree
    # Each slot's attention lands on its colour's object: its centroid is that object's centre.
    centre, _ = find_by_colour(images.float() / 255, codec.answer_encoder.colours)  # (B,6,2)
    truth = scenes[:, nearest, 1:].float() / 63 * 2 - 1  # (B,6,2): the generator's centres, slot order
    assert (centre - truth).abs().max() < 0.5 / 63


def test_the_decoder_draws_each_slot_where_its_digits_say():
    codec = scene_codec().eval()
    codec.seed_from_data(sort_of_clevr.render(sort_of_clevr.generate_scenes(32, seed=1)))
    code = torch.zeros(1, len(SCENE_LEVELS))
    code.view(1, 6, 3)[0, 0, 1:] = torch.tensor([-0.5, 0.5])  # slot 0 to the left, lower half
    code.view(1, 6, 3)[0, 1:, 1:] = 2.0  # the others off the canvas
    with torch.no_grad():
        image = codec.decoder(code)[0]  # (3,S,S)
    background = torch.sigmoid(codec.decoder.background)
    painted = (image - background[:, None, None]).abs().sum(0) > 0.1  # (S,S)
    ys, xs = painted.nonzero(as_tuple=True)
    assert painted.any() and xs.float().mean() < 31.5 and ys.float().mean() > 31.5
    colour = image[:, ys[0], xs[0]]
    assert torch.allclose(colour, torch.sigmoid(codec.decoder.colours[0]), atol=1e-5)  # in slot 0's colour


def test_a_scene_code_is_sent_digit_by_digit_and_decodes_to_the_same_images():
    codec = scene_codec().eval()
    images = sort_of_clevr.render(sort_of_clevr.generate_scenes(24, seed=2)).float() / 255
    codec.seed_from_data(images)
    symbols = codec.symbols_of(codec.code(images))
    assert symbols.shape == (24, len(SCENE_LEVELS)) and codec.group_sizes == SCENE_LEVELS
    codec.entropy_model.fit(symbols)
    freqs = codec.entropy_model.check_tables()
    decoded = torch.from_numpy(unpack_symbols(parse(pack(codec.compress(images).numpy(), freqs, key=b"k")), freqs))
    assert torch.equal(decoded, symbols)
    assert torch.equal(codec.decompress_pixels(decoded), codec.decompress_pixels(symbols))


@pytest.mark.parametrize("bad, match", [(dict(slots=5), "equal groups"), (dict(geometry_levels=(3,)), "no geometry_levels")])
def test_a_slot_layout_that_does_not_fit_is_one_clear_error(bad, match):
    with pytest.raises(VQAGanError, match=match):
        scene_codec(**bad)


def test_the_scene_codec_trains_a_few_steps_with_the_vqa_term(tmp_path):
    """Stage "joint" on the scenes: pixels through the slots, and the shipped scene critic's term on the drawing."""
    cfg = TrainConfig(model=CodecConfig(model="fsq", decoder="slots", slots=6, answer_levels=SCENE_LEVELS, answer_coding="digits",
                                        channels=16, encoder_channels=8),
                      data=DataConfig(name="sort-of-clevr", limit_images=16, val_images=8), steps=3, batch_size=8,
                      device="cpu", name="scene", out_dir=str(tmp_path / "scene"), log_every=1, eval_every=3, save_every=3)
    cfg.vqa.weight, cfg.gan.weight, cfg.distortion.scales = 1.0, 0.0, 4
    result = train(cfg, progress=False)
    assert np.isfinite(result.logs["train/vqa"]) and result.model.entropy_model.frozen
    assert result.model.entropy_model.check_tables().shape == (len(SCENE_LEVELS), 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_drawing_in_8_bits_is_the_float_decoder_rounded(seed):
    """Overlapping slots (the later on top), slots half or wholly off the canvas, repeated appearances."""
    codec = scene_codec().eval()
    codec.seed_from_data(sort_of_clevr.render(sort_of_clevr.generate_scenes(32, seed=1)))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in codec.decoder.sprite.parameters():  # sprites of every shape, not only the freshly built blob
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
        codec.decoder.half_size.copy_(torch.rand(6, 2, generator=g) * 0.3 + 0.05)
    code = codec.code_of(torch.stack([torch.randint(0, level, (200,), generator=g) for level in SCENE_LEVELS], dim=1))
    code.view(200, 6, 3)[:20, :, 1:] *= 1.6  # some centres beyond the edges
    code.view(200, 6, 3)[20:40, 1, 1:] = code.view(200, 6, 3)[20:40, 0, 1:]  # two slots in one place
    with torch.no_grad():
        expected = to_pixels(codec.decoder(code))
        drawn = codec.decoder.draw(code)
    assert drawn.dtype == torch.uint8 and torch.equal(drawn, expected)


@pytest.mark.skipif(slots._paint is None, reason="the C painter is not built here")
def test_drawing_paints_the_same_bytes_in_c_and_in_torch(monkeypatch):
    """Overlapping slots and slots off the canvas, into a fresh canvas and into rows of a larger one."""
    codec = scene_codec().eval()
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        codec.decoder.half_size.copy_(torch.rand(6, 2, generator=g) * 0.3 + 0.05)
    code = codec.code_of(torch.stack([torch.randint(0, level, (300,), generator=g) for level in SCENE_LEVELS], dim=1))
    code.view(300, 6, 3)[:30, :, 1:] *= 1.6
    code.view(300, 6, 3)[30:60, 1, 1:] = code.view(300, 6, 3)[30:60, 0, 1:]
    with torch.no_grad():
        in_c = codec.decoder.draw(code)
        into = torch.zeros((400, 64, 64, 3), dtype=torch.uint8)
        codec.decoder.draw(code, out=into[50:350])
        monkeypatch.setattr(slots, "_paint", None)
        in_torch = codec.decoder.draw(code)
        expected = to_pixels(codec.decoder(code))
    assert torch.equal(in_c, in_torch) and torch.equal(in_c, expected)
    assert torch.equal(into[50:350], in_c) and not into[:50].any() and not into[350:].any()


def test_drawing_follows_a_weight_changed_in_place():
    """`draw` keeps each look's stamp between calls; a weight changed in place (no train() between) must not
    leave a stale stamp behind."""
    codec = scene_codec().eval()
    g = torch.Generator().manual_seed(3)
    code = codec.code_of(torch.stack([torch.randint(0, level, (64,), generator=g) for level in SCENE_LEVELS], dim=1))
    with torch.no_grad():
        codec.decoder.draw(code)
        for p in codec.decoder.sprite.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
        codec.decoder.half_size.mul_(1.5)
        assert torch.equal(codec.decoder.draw(code), to_pixels(codec.decoder(code)))


def test_a_shipped_scene_codec_decodes_its_stream_in_8_bits_as_its_float_decoder():
    from vqagan_lib.models.codec import load_codec

    codec = load_codec("scenes-96bit")
    images = sort_of_clevr.load_split("test", limit_images=64).images.float() / 255
    symbols = codec.compress(images)
    assert torch.equal(codec.decompress_pixels(symbols), to_pixels(codec.decompress(symbols)))


@pytest.mark.parametrize("name", ["scenes-96bit", "scenes-64bit", "ablation-scenes-no-vqa-96bit", "ablation-scenes-non-relational-24bit",
                                  "ablation-scenes-no-vqa-24bit"])
def test_every_scene_recipe_runs_a_few_steps_from_its_start(name, tmp_path):
    from vqagan_lib.config import apply_overrides
    from vqagan_lib.runtime import CHECKPOINT_DIR
    from vqagan_lib.training.ladder import LADDER, ladder_config

    cfg = apply_overrides(ladder_config(name, steps=2), ["--data.limit_images", "16", "--data.val_images", "8",
                                                          "--batch_size", "8", "--out_dir", str(tmp_path / name)])
    start = LADDER[name].init
    result = train(cfg, progress=False, init_from=None if start is None else CHECKPOINT_DIR / f"{start}.safetensors")
    assert all(np.isfinite(v) for v in result.logs.values()) and result.model.entropy_model.frozen
    assert result.model.cfg.answer_levels == cfg.model.answer_levels
