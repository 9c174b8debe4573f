"""Classical codecs at their smallest settings, through imagecodecs, for the benchmark.

Each baseline turns one 64x64 RGB image into real bytes and back. Settings follow
the lowest quality each codec offers (WebP must be asked for *lossy* explicitly:
imagecodecs' default for WebP depends on the level). AVIF and JPEG XL carry
container headers of a few hundred / tens of bytes, which at these sizes dominate.
Introduced in notebooks/06_evaluation.ipynb.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class ClassicalCodec:
    name: str
    setting: str  # the exact setting, as shown in reports
    encode: Callable[[np.ndarray], bytes]  # (H,W,3) uint8 -> bytes
    decode: Callable[[bytes], np.ndarray]  # bytes -> (H,W,3) uint8


def classical_codecs() -> list[ClassicalCodec]:
    import imagecodecs as ic

    return [
        ClassicalCodec("WebP q0", "lossy, quality 0, method 6",
                       lambda a: ic.webp_encode(a, level=0, lossless=False, method=6), ic.webp_decode),
        ClassicalCodec("WebP q20", "lossy, quality 20, method 6",
                       lambda a: ic.webp_encode(a, level=20, lossless=False, method=6), ic.webp_decode),
        ClassicalCodec("JPEG q1", "libjpeg quality 1, optimised Huffman",
                       lambda a: ic.jpeg8_encode(a, level=1, optimize=True), ic.jpeg8_decode),
        ClassicalCodec("JPEG 2000", "OpenJPEG level 20",
                       lambda a: ic.jpeg2k_encode(a, level=20), ic.jpeg2k_decode),
        ClassicalCodec("JPEG XL d25", "libjxl distance 25",
                       lambda a: ic.jpegxl_encode(a, distance=25), ic.jpegxl_decode),
        # speed 6: the slower encoder settings buy a few bytes at 200 images/s; fine for a 1000-image run.
        ClassicalCodec("AVIF q0", "libavif quality 0, speed 6",
                       lambda a: ic.avif_encode(a, level=0, speed=6), ic.avif_decode),
    ]


def to_hwc_uint8(images) -> np.ndarray:
    """(B,3,H,W) float in [0,1] or uint8 tensor -> contiguous (B,H,W,3) uint8 numpy (what the codecs take)."""
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return np.ascontiguousarray(images.permute(0, 2, 3, 1).cpu().numpy())
