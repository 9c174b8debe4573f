"""Pixels as the library passes them: uint8 0..255 where images are stored, float 0..1 where models read them.

The splits hold their images as uint8 (a quarter of the memory); the codecs, the critic, the judges and
the metrics take either, and convert with `as_float` at their door.
Introduced in notebooks/00_data_tour.ipynb.
"""
import torch


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 or float 0..1 images, any shape -> float in [0, 1] (floats are passed through, not clamped)."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def palette_of(images: torch.Tensor, k: int, sample: int = 200_000, iterations: int = 20, seed: int = 0) -> torch.Tensor:
    """The k colours images are mostly made of: k-means over (a sample of) their pixels -> (k,3) in [0,1],
    the most common first (on flat scenes, the background).

    Models that find or draw objects by colour start from it, so that nothing in them is told a palette:
    it is read off the training data. Starts are farthest-point (each the pixel farthest from the starts so
    far): the background holds most pixels, and starts drawn at random would nearly all be background.
    """
    pixels = as_float(images).movedim(-3, -1).reshape(-1, 3)
    pixels = pixels[torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed))[:sample]]
    centres = pixels[:1].clone()
    for _ in range(k - 1):
        centres = torch.cat([centres, pixels[torch.cdist(pixels, centres).min(dim=1).values.argmax()][None]])
    for _ in range(iterations):
        nearest = torch.cdist(pixels, centres).argmin(dim=1)
        for j in range(k):
            if (nearest == j).any():
                centres[j] = pixels[nearest == j].mean(dim=0)
    counts = torch.bincount(torch.cdist(pixels, centres).argmin(dim=1), minlength=k)
    return centres[counts.argsort(descending=True)]
