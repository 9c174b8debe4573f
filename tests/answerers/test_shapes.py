import pytest
import torch

from vqagan_lib.data.easyvqa import COLORS, SHAPES, load_split
from vqagan_lib.answerers.shapes import PALETTE, describe, describe_batch, mask_iou, segment


def canvas(shape: str, colour: str, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A 64x64 easy-VQA-like picture drawn with torch: light background, one upright shape."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    if shape == "rectangle":
        mask = (yy >= 20) & (yy < 40) & (xx >= 10) & (xx < 45)
    elif shape == "circle":
        mask = (yy - 30) ** 2 + (xx - 33) ** 2 <= 14**2
    else:  # upright triangle: apex at the top, widening linearly downward
        mask = (yy >= 15) & (yy < 50) & ((xx - 32).abs() <= (yy - 15) * 0.6)
    img = torch.tensor([0.95, 0.93, 0.97]).view(3, 1, 1).expand(3, 64, 64).clone()
    img[:, mask] = (torch.tensor(PALETTE[colour], dtype=torch.float32) / 255).view(3, 1)
    return (img + noise * torch.randn(img.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("colour", ["red", "teal", "gray", "yellow"])
def test_describe_drawn_shapes(shape, colour):
    assert describe(canvas(shape, colour)) == (shape, colour)
    assert describe(canvas(shape, colour, noise=0.05)) == (shape, colour)  # a noisy reconstruction


def test_describe_uint8_and_float_agree():
    img = canvas("circle", "brown")
    as_uint8 = (img * 255).round().to(torch.uint8)
    assert describe(as_uint8) == describe(img) == ("circle", "brown")


def test_describe_first_test_images_matches_labels():
    split = load_split("test", limit_images=100)
    described = describe_batch(split.images)
    checked = 0
    for q, a, r in zip(split.questions, split.answers, split.question_image.tolist()):
        if a in SHAPES:
            assert described[r][0] == a, q
            checked += 1
        if a in COLORS:
            assert described[r][1] == a, q
            checked += 1
    assert checked > 50


def test_segment_keeps_the_shape_and_drops_a_stray_pixel():
    img = canvas("rectangle", "blue")
    img[:, 60, 60] = 0.0  # one dark speck far from the shape
    mask = segment(img[None])[0]
    assert mask.shape == (64, 64) and mask.dtype == torch.bool
    assert not mask[60, 60]
    assert int(mask.sum()) == 20 * 35


def test_empty_image_has_no_shape():
    blank = torch.full((1, 3, 64, 64), 0.95)
    assert not segment(blank).any()
    assert describe(blank[0]) == (None, None)


def test_mask_iou():
    a = torch.zeros(2, 8, 8, dtype=torch.bool)
    b = torch.zeros(2, 8, 8, dtype=torch.bool)
    a[0, :4], b[0, 2:6] = True, True  # 16 shared of 48 covered
    assert mask_iou(a, b).tolist() == pytest.approx([1 / 3, 1.0])  # second pair: both empty agree
    assert mask_iou(a[0], a[0]).item() == 1.0
