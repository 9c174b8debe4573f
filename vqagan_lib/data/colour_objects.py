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

# At this scale a colour 0.5 away (pixels in [-1, 1]) weighs e^-10 as much as an exact match, so neighbouring
# colours do not blur into each other.
SHARPNESS = 20.0
GLIMPSE = 13  # pixels along the side of the window around each object: the scenes' objects are 9 wide


def find_by_colour(x: torch.Tensor, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B,3,S,S) in [0,1], colours (K,3) in [-1,1] -> centroids (B,K,2) in [-1,1], silhouettes (B,K,G*G)."""
    b, _, size, _ = x.shape
    k = len(colours)
    pixels = (x * 2 - 1).flatten(2)  # (B,3,S*S)
    # -sharpness |p - c|^2 = sharpness (2 p.c - |p|^2 - |c|^2): one small matrix product over [p, |p|^2, 1],
    # where the difference itself would be a (B,K,S*S,3) tensor
    terms = torch.cat([pixels, (pixels ** 2).sum(1, keepdim=True), torch.ones_like(pixels[:, :1])], dim=1)  # (B,5,S*S)
    weights = SHARPNESS * torch.cat([2 * colours, -torch.ones_like(colours[:, :1]), -(colours ** 2).sum(1, keepdim=True)], dim=1)
    logits = weights @ terms  # (B,K,S*S)
    weight = torch.softmax(logits, dim=2).view(b, k, size, size)
    ramp = torch.linspace(-1, 1, size, device=x.device, dtype=x.dtype)  # pixel i at -1 + 2i/(S-1)
    centre = torch.stack([weight.sum(2) @ ramp, weight.sum(3) @ ramp], dim=2)  # (B,K,2): x from the columns, y the rows
    return centre, _glimpse(logits.view(b, k, size * size), centre, size).flatten(2)


def _glimpse(logits: torch.Tensor, centre: torch.Tensor, size: int) -> torch.Tensor:
    """Closeness exp(logits) (B,K,S*S) sampled bilinearly at the centroid (B,K,2) plus whole-pixel offsets -> (B,K,G,G).

    Every sample shares the centroid's fraction of a pixel, so the sampling is one (G+1) x (G+1) window of
    pixels blended by those two fractions, zero outside the canvas: the closeness of the rest of the
    picture is never computed.
    """
    position = (centre + 1) * (size - 1) / 2  # (B,K,2) in pixels
    whole = torch.floor(position.detach())
    fraction = position - whole  # the gradient of a sample's place flows through its fraction
    steps = torch.arange(GLIMPSE + 1, device=logits.device) - (GLIMPSE - 1) // 2
    cols, rows = whole[..., 0:1].long() + steps, whole[..., 1:2].long() + steps  # (B,K,G+1) each
    inside = ((rows >= 0) & (rows < size))[..., :, None] & ((cols >= 0) & (cols < size))[..., None, :]
    flat = rows.clamp(0, size - 1)[..., :, None] * size + cols.clamp(0, size - 1)[..., None, :]  # (B,K,G+1,G+1)
    window = torch.exp(logits.gather(2, flat.flatten(2))).view(flat.shape) * inside
    fx, fy = fraction[..., 0, None, None], fraction[..., 1, None, None]
    top = (1 - fx) * window[..., :-1, :-1] + fx * window[..., :-1, 1:]
    bottom = (1 - fx) * window[..., 1:, :-1] + fx * window[..., 1:, 1:]
    return (1 - fy) * top + fy * bottom
