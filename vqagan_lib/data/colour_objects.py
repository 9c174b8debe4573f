"""Objects found by colour: where each of a few colours' pixels are, and what silhouette they make.

Flat scenes (Sort-of-CLEVR) draw each object in a colour of its own. Given K colours (learnt, and started
at the training images' own colours by data/pixels.palette_of), each colour's pixels are found by their
squared distance to it:

    where:      softmax over all pixels of -sharpness * distance     -> its centroid (B,K,2) in [-1, 1]
    silhouette: exp(-sharpness * distance), sampled in a G x G window around that centroid -> (B,K,G*G)

Both are differentiable in the pixels and in the colours. The window is centred on the object, so a reader
of the silhouette learns one shape wherever it stands. The scene critic (answerers/relation_critic.py) and the
scene codec's encoder (models/slots.py) both read objects this way.
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import torch
import torch.nn.functional as F

# At this scale a colour 0.5 away (pixels in [-1, 1]) weighs e^-10 as much as an exact match, so neighbouring
# colours do not blur into each other.
SHARPNESS = 20.0
GLIMPSE = 13  # pixels along the side of the window around each object: the scenes' objects are 9 wide


def pixel_grid(size: int, device) -> torch.Tensor:
    """(S*S,2): the (x, y) of each pixel in [-1, 1], row-major."""
    ramp = torch.linspace(-1, 1, size, device=device)
    ys, xs = torch.meshgrid(ramp, ramp, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


def find_by_colour(x: torch.Tensor, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B,3,S,S) in [0,1], colours (K,3) in [-1,1] -> centroids (B,K,2) in [-1,1], silhouettes (B,K,G*G)."""
    b, _, size, _ = x.shape
    k = len(colours)
    pixels = (x * 2 - 1).flatten(2).transpose(1, 2)  # (B,S*S,3)
    distance = ((pixels[:, None] - colours[None, :, None]) ** 2).sum(dim=3)  # (B,K,S*S)
    centre = torch.softmax(-SHARPNESS * distance, dim=2) @ pixel_grid(size, x.device)  # (B,K,2)
    closeness = torch.exp(-SHARPNESS * distance).view(b * k, 1, size, size)
    steps = torch.arange(GLIMPSE, dtype=x.dtype, device=x.device) - (GLIMPSE - 1) / 2  # pixel offsets around the centre
    ys, xs = torch.meshgrid(steps, steps, indexing="ij")
    # pixel_grid puts pixel i at -1 + 2i/(S-1): align_corners=True samples on the same grid
    where = centre.view(b * k, 1, 1, 2) + torch.stack([xs, ys], dim=2)[None] * (2 / (size - 1))  # (B*K,G,G,2)
    silhouette = F.grid_sample(closeness, where, padding_mode="zeros", align_corners=True)  # (B*K,1,G,G)
    return centre, silhouette.view(b, k, GLIMPSE * GLIMPSE)
