"""Objects found by colour: the fast glimpse is the bilinear sampling it stands for."""
import pytest
import torch
import torch.nn.functional as F

from vqagan_lib.data import sort_of_clevr
from vqagan_lib.data.colour_objects import GLIMPSE, SHARPNESS, find_by_colour


def reference(x, colours):
    """The definition, computed the slow way: every pixel's distance to every colour, the whole canvas's
    closeness, and grid_sample at the centroid plus whole-pixel offsets."""
    b, _, size, _ = x.shape
    pixels = (x * 2 - 1).flatten(2).transpose(1, 2)  # (B,S*S,3)
    distance = ((pixels[:, None] - colours[None, :, None]) ** 2).sum(dim=3)  # (B,K,S*S)
    ramp = torch.linspace(-1, 1, size)
    ys, xs = torch.meshgrid(ramp, ramp, indexing="ij")
    centre = torch.softmax(-SHARPNESS * distance, dim=2) @ torch.stack([xs.flatten(), ys.flatten()], dim=1)
    closeness = torch.exp(-SHARPNESS * distance).view(b * len(colours), 1, size, size)
    steps = torch.arange(GLIMPSE, dtype=x.dtype) - (GLIMPSE - 1) / 2
    gy, gx = torch.meshgrid(steps, steps, indexing="ij")
    where = centre.view(-1, 1, 1, 2) + torch.stack([gx, gy], dim=2)[None] * (2 / (size - 1))
    silhouette = F.grid_sample(closeness, where, padding_mode="zeros", align_corners=True)
    return centre, silhouette.view(b, len(colours), GLIMPSE * GLIMPSE)


@pytest.mark.parametrize("kind", ["scenes", "noisy", "random"])
def test_centroids_and_glimpses_are_the_bilinear_sampling_of_the_closeness(kind):
    g = torch.Generator().manual_seed(0)
    scenes = sort_of_clevr.generate_scenes(24, seed=3)
    r, far = sort_of_clevr.OBJECT_RADIUS, 63 - sort_of_clevr.OBJECT_RADIUS
    scenes[0, :, 1:] = torch.tensor([[r, r], [far, far], [r, 30], [30, far], [far, r], [44, 44]])  # windows over the edges
    x = sort_of_clevr.render(scenes).float() / 255
    if kind == "noisy":
        x = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    elif kind == "random":
        x = torch.rand(x.shape, generator=g)
    colours = torch.tensor([sort_of_clevr.PALETTE[c] for c in sort_of_clevr.COLORS]).float() / 255 * 2 - 1
    colours = colours + 0.05 * torch.randn(colours.shape, generator=g)  # learnt colours are never exact
    (centre, silhouette), (want_centre, want_silhouette) = find_by_colour(x, colours), reference(x, colours)
    assert torch.allclose(centre, want_centre, atol=1e-5)
    assert torch.allclose(silhouette, want_silhouette, atol=1e-4)
    if kind != "random":
        assert silhouette.amax() > 0.5  # the scenes' objects are found
