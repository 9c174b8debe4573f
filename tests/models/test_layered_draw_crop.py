"""LayeredDecoder.draw samples the sprite only inside the window it can reach; these tests hold it to the
whole-canvas drawing, pixel for pixel, where a last-bit slip in a grid value would flip a thresholded pixel."""
import pytest
import torch

from vqagan_lib.coding.images import to_pixels
from vqagan_lib.models import layered_decoder
from vqagan_lib.models.layered_decoder import LayeredDecoder

S, ANSWER_DIM = 64, 3


def sprites_and_boxes(decoder: LayeredDecoder, code: torch.Tensor):
    """What `draw` samples, computed as it computes it: the sprites once per distinct answer code, each on
    its own, so that the boxes are the very ones `draw` places."""
    with torch.no_grad():
        answers, which = torch.unique(code[:, :decoder.answer_dim], dim=0, return_inverse=True)
        made = [decoder.appearance(a[None]) for a in answers]
        mask, colour, layout = (torch.cat(parts) for parts in zip(*made))
        box, background = decoder.box_of(layout[which], code[:, decoder.answer_dim:])
    return mask, colour[which], box, background, which


def whole_canvas_draw(decoder: LayeredDecoder, code: torch.Tensor) -> torch.Tensor:
    """The drawing that `draw` must match: every pixel of the canvas sampled, thresholded, composited."""
    mask, colour, box, background, which = sprites_and_boxes(decoder, code)
    with torch.no_grad():
        placed = (decoder.placed_mask(mask[which], box) > 0.5).to(torch.uint8).permute(0, 2, 3, 1)
    fill = to_pixels(colour)[:, None, None, :]
    back = to_pixels(background)[:, None, None, :]
    return placed * fill + (1 - placed) * back


def spread_decoder(seed: int, geometry_dim: int) -> LayeredDecoder:
    """Random weights, with the default layout and the digits' reach widened, so that boxes land partly or
    wholly off the canvas, shrink to a pixel or none and outgrow the canvas, not only sit near its middle."""
    torch.manual_seed(seed)
    decoder = LayeredDecoder(S, 16, ANSWER_DIM, geometry_dim).eval()
    with torch.no_grad():
        last = decoder.layout[-1]
        last.weight.mul_(torch.tensor([5.0, 5.0, 12.0, 5.0, 1.0, 1.0, 1.0])[:, None])
        last.bias.copy_(torch.tensor([0.0, 0.0, -0.3, 0.0, 0.0, 0.0, 0.0]))
        decoder.digit_scale.copy_(torch.tensor([1.0, 1.0, 1.5, 0.7, 1.0, 1.0, 1.0])[:geometry_dim])
    return decoder


def random_codes(n: int, geometry_dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    code = torch.rand(n, ANSWER_DIM + geometry_dim, generator=generator) * 2 - 1
    code[:, :ANSWER_DIM] = torch.round(code[:, :ANSWER_DIM] * 2) / 2  # few distinct answers, as a real batch has
    return code


@pytest.mark.parametrize("geometry_dim", range(len(LayeredDecoder.LAYOUT) + 1))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_draw_is_the_whole_canvas_drawing_for_random_decoders(seed, geometry_dim):
    decoder = spread_decoder(seed, geometry_dim)
    code = random_codes(300, geometry_dim, seed)
    assert torch.equal(decoder.draw(code), whole_canvas_draw(decoder, code))
    assert torch.equal(decoder.draw(code[:1]), whole_canvas_draw(decoder, code[:1]))


@pytest.mark.skipif(layered_decoder._paint is None, reason="the C painter is not built here")
def test_draw_paints_the_same_bytes_in_c_and_in_torch(monkeypatch):
    decoder = spread_decoder(5, 4)
    code = random_codes(300, 4, 5)
    in_c = decoder.draw(code)
    into = torch.zeros((400, S, S, 3), dtype=torch.uint8)
    decoder.draw(code, out=into[50:350])
    monkeypatch.setattr(layered_decoder, "_paint", None)
    assert torch.equal(in_c, decoder.draw(code)) and torch.equal(in_c, whole_canvas_draw(decoder, code))
    assert torch.equal(into[50:350], in_c) and not into[:50].any() and not into[350:].any()


@pytest.mark.skipif(layered_decoder._paint is None, reason="the C painter is not built here")
@pytest.mark.parametrize("margin", [0.0, 0.6])
def test_the_c_sampler_and_grid_sample_settle_the_same_pixels(monkeypatch, margin):
    """Margin 0: every pixel is decided by the C sampler's doubles; 0.6: every reachable one is left to grid_sample."""
    monkeypatch.setattr(layered_decoder, "UNSURE_MARGIN", margin)
    for seed in range(3):
        decoder = spread_decoder(seed, 4)
        code = random_codes(300, 4, seed)
        assert torch.equal(decoder.draw(code), whole_canvas_draw(decoder, code))


def test_draw_matches_forward_with_the_untouched_starting_weights():
    torch.manual_seed(3)
    decoder = LayeredDecoder(S, 16, ANSWER_DIM, 4).eval()
    code = random_codes(200, 4, 3)
    with torch.no_grad():
        assert torch.equal(decoder.draw(code), to_pixels(decoder(code)))


def boxes_at_the_edges() -> torch.Tensor:
    """Codes whose boxes (x, y, size, aspect, with one unit of a digit one unit of layout) straddle each side
    and corner, lie wholly outside, shrink to the smallest box, or are larger than the canvas."""
    centres = [-2.5, -1.3, -1.0, -0.97, -0.5, 0.0, 0.31, 0.97, 1.0, 1.3, 2.5]
    sizes = [-6.0, -3.0, -1.5, -0.5, 0.0, 0.8, 1.4, 6.0]
    aspects = [-2.0, 0.0, 0.7, 2.0]
    rows = [[x, y, size, aspect] for x in centres for y in centres[::3] for size in sizes[::2] for aspect in aspects[::3]]
    rows += [[x, x, size, aspect] for x in centres for size in sizes for aspect in aspects]
    on_pixel_centres = [(2 * j - (S - 1)) / S for j in (0, 1, 20, 31, 32, S - 1)]
    rows += [[x, y, -6.0, 0.0] for x in on_pixel_centres for y in on_pixel_centres]  # the smallest box, a pixel or none
    geometry = torch.tensor(rows)
    answers = torch.tensor([[0.0, 0.5, -0.5], [1.0, -1.0, 0.0]]).repeat(len(geometry) // 2 + 1, 1)[:len(geometry)]
    return torch.cat([answers, geometry], 1)


def box_decoder(seed: int) -> LayeredDecoder:
    """A decoder whose four geometry digits are the box itself (no default layout, one unit a unit), with a
    filled sprite: every reachable pixel is lit, so a window that cut one off would show."""
    torch.manual_seed(seed)
    decoder = LayeredDecoder(S, 16, ANSWER_DIM, 4).eval()
    with torch.no_grad():
        decoder.layout[-1].weight.zero_()
        decoder.layout[-1].bias.zero_()
        decoder.digit_scale.fill_(1.0)
        decoder.sprite[-1].bias.fill_(30.0)
    return decoder


@pytest.mark.parametrize("seed", [0, 1])
def test_draw_is_the_whole_canvas_drawing_for_boxes_at_the_edges(seed):
    decoder = box_decoder(seed)
    code = boxes_at_the_edges()
    with torch.no_grad():
        _, _, box, _ = decoder.render(code)
    assert box[:, 2:].min() == pytest.approx(1e-2) and box[:, 2:].max() == pytest.approx(1.2)  # smallest, largest
    assert (box[:, 0].abs() - box[:, 2] > 1).any()  # some wholly off the canvas
    drawn = decoder.draw(code)
    assert torch.equal(drawn, whole_canvas_draw(decoder, code))
    # The cases are there: sprites cut by the canvas's edge, a smallest box drawing a pixel, the whole canvas lit.
    with torch.no_grad():
        lit = (drawn != to_pixels(decoder.render(code)[3])[:, None, None, :]).any(3)
    assert (lit[:, 0].any(1) | lit[:, -1].any(1) | lit[:, :, 0].any(1) | lit[:, :, -1].any(1)).sum() > 50
    assert (lit.any((1, 2)) & (box[:, 2:].amax(1) < 0.02)).sum() >= 10
    assert lit.all((1, 2)).sum() >= 1


@pytest.mark.parametrize("group", [1, 3, 7, 1000])
def test_the_window_grouping_does_not_change_the_drawing(group):
    decoder = spread_decoder(4, 7)
    code = random_codes(150, 7, 4)
    decoder.WINDOW_GROUP = group  # a window per image (some reaching nothing), odd splits, one for the batch
    assert torch.equal(decoder.draw(code), whole_canvas_draw(decoder, code))


def test_each_window_samples_at_the_very_grid_values_of_the_whole_canvas(monkeypatch):
    """The exactness does not rest on luck: a sample lands within a last bit of 0.5 too rarely for random
    drawings to show a grid value computed another way, so the grids themselves are compared, bit for bit,
    with `placement`'s, and each window with the columns and rows its sprite reaches (the torch windows: the
    C sampler leaves every pixel it cannot prove to grid_sample, test_the_c_sampler_and_grid_sample_...)."""
    monkeypatch.setattr(layered_decoder, "_paint", None)
    decoder = spread_decoder(6, 4)
    decoder.WINDOW_GROUP = 16
    code = random_codes(120, 4, 6)
    grids, sample = [], torch.nn.functional.grid_sample

    def recording_sample(sprite, grid, **how):
        grids.append(grid.clone())
        return sample(sprite, grid, **how)

    monkeypatch.setattr(torch.nn.functional, "grid_sample", recording_sample)
    decoder.draw(code)
    monkeypatch.setattr(torch.nn.functional, "grid_sample", sample)
    _, _, box, _, _ = sprites_and_boxes(decoder, code)
    whole = decoder.placement(box)
    column_x, row_y = whole[:, 0, :, 0], whole[:, :, 0, 1]  # (B, S) each
    reach = 1 + 1 / LayeredDecoder.SPRITE
    sampled = []
    for grid in grids:
        _, h, w, _ = grid.shape
        x, y = grid[:, 0, :, 0], grid[:, :, 0, 1]
        assert torch.equal(grid[..., 0], x[:, None, :].expand(-1, h, -1))
        assert torch.equal(grid[..., 1], y[:, :, None].expand(-1, -1, w))
        for x_of_image, y_of_image in zip(x, y):
            at_x = (column_x.unfold(1, w, 1) == x_of_image).all(2)  # (B, S - w + 1): image, first column
            at_y = (row_y.unfold(1, h, 1) == y_of_image).all(2)
            image = (at_x.any(1) & at_y.any(1)).nonzero()[:, 0]
            assert len(image) == 1  # one image's own coordinates, not a recomputation of them
            b = int(image)
            reached_x = (column_x[b].abs() < reach).nonzero()[:, 0]
            reached_y = (row_y[b].abs() < reach).nonzero()[:, 0]
            first_x, first_y = int(at_x[b].nonzero()[0]), int(at_y[b].nonzero()[0])
            assert all(first_x <= c < first_x + w for c in reached_x.tolist())
            assert all(first_y <= r < first_y + h for r in reached_y.tolist())
            sampled.append(b)
    reaching = [b for b in range(len(code)) if (column_x[b].abs() < reach).any() and (row_y[b].abs() < reach).any()]
    assert sorted(sampled) == sorted(set(sampled)) and set(reaching) <= set(sampled)
    assert len(reaching) < len(code)  # some sprites miss the canvas: the test sees them left out


def test_lit_pixels_are_the_whole_canvas_pixels_over_half():
    decoder = spread_decoder(5, 4)
    code = random_codes(100, 4, 5)
    with torch.no_grad():
        mask, _, layout = decoder.appearance(code[:, :ANSWER_DIM])
        box, _ = decoder.box_of(layout, code[:, ANSWER_DIM:])
        which = torch.arange(len(code))
        lit = decoder.lit_pixels(mask, which, box)
        whole = (decoder.placed_mask(mask, box) > 0.5).flatten().nonzero()[:, 0]
    assert torch.equal(lit.long().sort().values, whole)


def test_an_empty_batch_draws_no_images_and_sprites_off_the_canvas_draw_only_background():
    decoder = box_decoder(0)
    drawn = decoder.draw(torch.zeros(0, ANSWER_DIM + 4))
    assert drawn.shape == (0, S, S, 3) and drawn.dtype == torch.uint8
    code = boxes_at_the_edges()
    code = code[code[:, ANSWER_DIM].abs() > 2]  # centred 2.5 away: not even the largest box reaches in
    drawn = decoder.draw(code)
    assert torch.equal(drawn, whole_canvas_draw(decoder, code))
    with torch.no_grad():
        background = to_pixels(decoder.render(code)[3])
    assert len(code) > 0 and torch.equal(drawn, background[:, None, None, :].expand(-1, S, S, -1))


def test_a_sample_a_whole_texel_past_the_sprite_reads_exactly_zero():
    """The premise of the window: with zero padding and align_corners=False, |g| >= 1 + 1/T samples padding
    alone, and a little inside that bound a full sprite still gives something (the bound is not loose)."""
    t = LayeredDecoder.SPRITE
    bound = torch.tensor(1 + 1 / t)
    past = torch.stack([bound, torch.nextafter(bound, torch.tensor(9.0)), bound + 0.3, torch.tensor(7.0)])
    inside = bound - 1e-4
    across = torch.linspace(-1.2, 1.2, 9)
    full = torch.ones(1, 1, t, t)

    def sample(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        grid = torch.stack([x[:, None].expand(-1, len(y)), y[None, :].expand(len(x), -1)], 2)[None]
        return torch.nn.functional.grid_sample(full, grid, padding_mode="zeros", align_corners=False)

    for outside in (past, -past):
        assert (sample(outside, across) == 0).all() and (sample(across, outside) == 0).all()
    assert (sample(torch.stack([inside, -inside]), torch.zeros(1)) > 0).all()


def shipped_layered_codecs() -> list[str]:
    from vqagan_lib.checkpoint import list_checkpoints
    from vqagan_lib.models.codec import CODEC_KINDS
    from vqagan_lib.runtime import models_dirs

    return [card["name"] for card in list_checkpoints(models_dirs()[0])
            if card.get("kind") in CODEC_KINDS and (card.get("config") or {}).get("decoder") == "layered"]


def test_the_shipped_layered_codecs_draw_their_test_codes_as_the_whole_canvas_does():
    from vqagan_lib.data.easyvqa import load_split
    from vqagan_lib.models.codec import load_codec

    names = shipped_layered_codecs()
    assert {"vqagan-16bit", "vqagan-32bit", "vqagan-64bit"} <= set(names)
    x = load_split("test", limit_images=200).images.float() / 255
    for name in names:
        codec = load_codec(name)
        with torch.no_grad():
            code = codec.code_of(codec.compress(x))
        assert torch.equal(codec.decoder.draw(code), whole_canvas_draw(codec.decoder, code)), name


def test_appearances_are_made_once_per_answer_code_and_forgotten_on_train():
    decoder = spread_decoder(0, 4)
    first, second = random_codes(200, 4, 1), random_codes(200, 4, 2)
    decoder.draw(first)
    seen = len(torch.unique(first[:, :ANSWER_DIM], dim=0))
    assert len(decoder._known[0]) == seen
    both = torch.cat([first, second])
    drawn = decoder.draw(both)
    assert len(decoder._known[0]) == len(torch.unique(both[:, :ANSWER_DIM], dim=0))  # only the new codes were added
    with torch.no_grad():
        answers = torch.unique(both[:, :ANSWER_DIM], dim=0)
        cached = decoder.appearances(answers)
        for row, answer in enumerate(answers):  # each code's sprite as made alone: the same in any batch
            for kept, alone in zip(cached, decoder.appearance(answer[None])):
                assert torch.equal(kept[row:row + 1], alone)
    assert torch.equal(drawn, whole_canvas_draw(decoder, both))
    decoder.train()
    assert decoder._known is None
