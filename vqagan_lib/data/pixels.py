"""Pixels as the library passes them: uint8 0..255 where images are stored, float 0..1 where models read them.

The splits hold their images as uint8 (a quarter of the memory); the codecs, the critic, the judges and
the metrics take either, and convert with `as_float` at their door.
Introduced in notebooks/00_data_tour.ipynb.
"""
import torch


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 or float 0..1 images, any shape -> float in [0, 1] (floats are passed through, not clamped)."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
