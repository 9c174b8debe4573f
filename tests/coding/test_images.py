import numpy as np
import pytest
import torch
from PIL import Image

from vqagan_lib.coding import images
from vqagan_lib.errors import VQAGanError
from vqagan_lib.coding.images import load_image, save_png


def test_rgb_png_at_native_size_is_exact(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    x, size = load_image(tmp_path / "a.png", 64)
    assert size == (64, 64) and x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert np.array_equal(images.to_uint8(x), pixels)


def test_rgba_composites_on_white_and_greyscale_palette_become_rgb(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)  # opaque red left half, fully transparent right half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    x, _ = load_image(tmp_path / "t.png", image_size=8)
    assert x[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and x[:, 0, 7].tolist() == [1.0, 1.0, 1.0]
    Image.fromarray(np.full((10, 6), 128, np.uint8), "L").save(tmp_path / "g.png")
    x, size = load_image(tmp_path / "g.png", image_size=8)
    assert size == (6, 10) and torch.allclose(x, torch.full_like(x, 128 / 255))
    Image.fromarray(np.full((8, 8, 3), 40, np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    x, _ = load_image(tmp_path / "p.png", image_size=8)
    assert x.shape == (3, 8, 8) and abs(x.mean().item() - 40 / 255) < 0.02


def test_16_bit_greyscale_keeps_its_range(tmp_path):
    grey = np.array([[0, 32768], [65535, 65535]], dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "16.png")
    x, size = load_image(tmp_path / "16.png", image_size=2)
    assert size == (2, 2)
    assert x[0].flatten().tolist() == pytest.approx([0.0, 32768 / 65535, 1.0, 1.0])


def test_odd_sizes_resize_to_native_and_jpeg_reads(tmp_path):
    Image.fromarray(np.full((37, 91, 3), 200, np.uint8)).save(tmp_path / "odd.jpg", quality=95)
    x, size = load_image(tmp_path / "odd.jpg", 64)
    assert size == (91, 37) and x.shape == (3, 64, 64) and abs(x.mean().item() - 200 / 255) < 0.02
    restored = images.resize(x, (37, 91))
    assert restored.shape == (3, 37, 91)


def test_bad_inputs_are_clear_errors_naming_the_file(tmp_path, monkeypatch):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(VQAGanError, match="notes.png: not a readable image"):
        load_image(tmp_path / "notes.png", 64)
    with pytest.raises(VQAGanError, match="missing.png: no such file"):
        load_image(tmp_path / "missing.png", 64)
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 800)
    with pytest.raises(VQAGanError, match="big.png: image is 30x30, more than"):
        load_image(tmp_path / "big.png", 64)
    data = (tmp_path / "big.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(images, "MAX_PIXELS", 50_000_000)
    with pytest.raises(VQAGanError, match="cut.png"):
        load_image(tmp_path / "cut.png", 64)


def test_save_png_round_trips_and_leaves_no_temporary_files(tmp_path):
    x = torch.rand(3, 8, 8)
    save_png(tmp_path / "out.png", x)
    y, size = load_image(tmp_path / "out.png", image_size=8)
    assert size == (8, 8) and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert np.array_equal(images.to_uint8(y), images.to_uint8(x))


def test_png_at_size_takes_floats_or_8_bit_pixels_alike():
    from vqagan_lib.coding.images import png_at_size, to_pixels

    x = torch.rand(1, 3, 16, 16)
    pixels = to_pixels(x)[0]  # (16, 16, 3) uint8
    for size in ((16, 16), (40, 24)):
        assert png_at_size(pixels, size) == png_at_size(x[0], size)
