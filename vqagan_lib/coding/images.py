"""Reading any PNG/JPEG into the model's native tensor, and writing PNGs back atomically.

The codec works on (3, S, S) float images in [0, 1] (S is the model's `image_size`). Real files come in
every mode, so `load_image` normalises them:
- greyscale (L), palette (P), CMYK, 16-bit greyscale (I;16 / I): converted to RGB; 16-bit
  values are scaled by 1/65535, not truncated to their low byte;
- anything with transparency (RGBA, LA, P with a transparent colour): composited on WHITE, since
  the datasets' backgrounds are light and a transparent pixel has no colour of its own to keep;
- EXIF orientation is applied, so the picture is upright as viewers show it;
- any size is resized (squashed, antialiased) to S x S; the original (w, h) is returned so the
  decoder can restore it.
Files larger than 100 MB or 50 megapixels are refused before decoding (no decompression bombs), and
only regular files are read (a FIFO or a device is refused before any byte is read).

Decoding restores each image's original size with `png_at_size`, which upsamples the rounded
8-bit image with PIL rather than a float tensor: a W x H output then costs 3 bytes a pixel,
not the ~50 of float copies, which is what keeps decoding a large image within memory.

Introduced in notebooks/02_codec.ipynb.
"""
import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from vqagan_lib.errors import VQAGanError
from vqagan_lib.fileio import atomic_write_bytes, read_regular

MAX_FILE_BYTES = 100 * 1024 * 1024  # larger files are refused unread
MAX_PIXELS = 50_000_000  # larger images are refused before their pixels are decoded


def _to_rgb_float(img: Image.Image) -> np.ndarray:
    """A PIL image in any mode -> float32 (H, W, 3) in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale (PNG gives I;16 or I)
        grey = np.asarray(img, dtype=np.float64)
        grey = np.clip(grey / 65535.0, 0.0, 1.0).astype(np.float32)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def load_image(path, image_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Read an image file -> ((3, S, S) float tensor in [0, 1], original (width, height))."""
    data = read_regular(path, MAX_FILE_BYTES)  # regular files only, never more than the limit
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise VQAGanError(f"{path}: image is {w}x{h}, more than the {MAX_PIXELS // 10**6} megapixel limit")
            img.load()
            img = ImageOps.exif_transpose(img)
            w, h = img.size
            pixels = _to_rgb_float(img)  # (H, W, 3)
    except VQAGanError:
        raise
    except Image.DecompressionBombError:
        raise VQAGanError(f"{path}: image is more than the {MAX_PIXELS // 10**6} megapixel limit") from None
    except UnidentifiedImageError:
        raise VQAGanError(f"{path}: not a readable image (expected PNG or JPEG)") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise VQAGanError(f"{path}: damaged or unsupported image ({e})") from None
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)  # (3, H, W)
    return resize(x, (image_size, image_size)), (w, h)


def resize(x: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) -> (3, h, w), antialiased bilinear, clamped to [0, 1]; a no-op at the same size."""
    if tuple(x.shape[-2:]) == tuple(size_hw):
        return x
    y = F.interpolate(x.unsqueeze(0), size=size_hw, mode="bilinear", antialias=True, align_corners=False)
    return y.squeeze(0).clamp(0.0, 1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded."""
    pixels = np.clip(x.detach().cpu().numpy(), 0.0, 1.0) * np.float32(255.0)  # numpy: torch's per-call cost
    return np.ascontiguousarray(np.rint(pixels).astype(np.uint8).transpose(1, 2, 0))  # dominated decoding many small images


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] (..., 3) or images (B,3,H,W) -> uint8, rounded half to even as `to_uint8`; images
    come back channels last, (B,H,W,3), as image libraries hold them."""
    pixels = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous() if pixels.dim() == 4 else pixels


def png_bytes(x: torch.Tensor) -> bytes:
    """(3, H, W) in [0, 1] -> PNG bytes at its own size."""
    return png_at_size(x, (x.shape[-1], x.shape[-2]))


def png_at_size(x: torch.Tensor, size_wh: tuple[int, int]) -> bytes:
    """(3, S, S) in [0, 1], or 8-bit pixels (S, S, 3), -> PNG bytes at (w, h), bilinear (antialiased when
    shrinking), in 8 bits."""
    img = Image.fromarray(x.cpu().numpy() if x.dtype == torch.uint8 else to_uint8(x))
    if img.size != tuple(size_wh):
        img = img.resize(tuple(size_wh), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=1)  # 4-5x faster than the default 6 on large outputs, ~20% larger
    return buffer.getvalue()


def save_png(path, x: torch.Tensor) -> None:
    """Write a (3, H, W) image in [0, 1] as PNG, atomically (never a half-written file)."""
    atomic_write_bytes(path, png_bytes(x))
