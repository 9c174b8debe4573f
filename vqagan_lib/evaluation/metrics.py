"""Image-fidelity measures used by the notebooks and the benchmark.

PSNR for pixels, and a sharpness measure for the GAN discussion. Accuracy lives in
answerers/vqa_eval.py; shape-mask IoU in answerers/shapes.py.
Introduced in notebooks/01_vae.ipynb.
"""
import torch
import torch.nn.functional as F

from vqagan_lib.data.pixels import as_float


def psnr(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0,1] (or uint8); (B,3,H,W) -> (B,). Capped at 100 dB for exact copies."""
    mse = (as_float(original) - as_float(reconstruction)).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp_max(100.0)


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Variance of the Laplacian per image (B,): blur lowers it, crisp edges raise it.

    Read it as a ratio to the originals' value: near 1 means as sharp as real images.
    """
    gray = as_float(images).mean(1, keepdim=True)  # (B,1,H,W)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return F.conv2d(gray, kernel.to(gray)).flatten(1).var(1)
