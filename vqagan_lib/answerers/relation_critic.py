"""A critic that can answer relational questions: a relation module over the CNN's cells.

Santoro et al. 2017 ("A simple neural network module for relational reasoning", arXiv
1706.01427) show that a CNN whose pooled features meet the question in an MLP answers
"what shape is the red object?" well but "what shape is the object closest to the red one?"
barely above chance: pooling throws away where things are. Their relation network keeps every
cell of the feature map as an "object" (features + its coordinates) and scores every pair of
cells with an MLP g, conditioned on the question, then sums. With C cells that is C^2 pairs
per question. Our questions always name one object and relate the others to it, so we keep
one side of each pair fixed to the object the question names:

    image -> CNN -> cells o_1..o_C (B,C,D), each with its (x, y)
           -> colour prototypes m_1..m_K (k-means of the training pixels): where each one's colour is,
              a softmax over the pixels, summed within each cell (and its centroid's share of each cell)
    question -> GRU -> q (B,D), and one word it picks (the object's name) -> n (B,D)
    find:    which = softmax(w(n)) over the K prototypes      the colour the name means
             a = sum_k which_k mass_k   (B,C)                 o* = sum_j a_j o_j, and its centroid
    relate:  h_j = g(o*, o_j, q)  (two layers)     over every cell j      C pairs, not C^2
             pick = softmax_j(s(h))                                       e.g. the closest object
             r = [sum_j pick_j o_j, where it is, sum_j pick_j h_j, mean_j h_j]   closest/farthest: pick; count: mean
    answer:  f(o*, its centroid, q, r) -> logits

The "find" step is learned, not a lookup: nothing here knows the dataset's colours. The prototypes start
at the colours the training images are made of (data/pixels.py, palette_of) and train on; which one a
name means is learned from the answers. Finding by colour distance rather than by a learned attention
over the cells matters on a CPU: with attention scores computed from features, a question's named
object is a few cells of hundreds, a softmax over them starts nearly flat, and "left or right?" sat at
chance for several hundred steps; choosing among K prototypes is a K-way choice from the first step.
The cells are split into `image(x)` (once per image) and `fuse(cells, q)` (once per question), the same
two halves as the pooled critic, so trainers share one CNN pass among an image's questions.
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from vqagan_lib.data.pixels import palette_of


# The pick scores are scaled up: freshly initialised layers give scores too close together for a softmax
# to single out one object.
SHARPNESS = 8.0
# Each prototype's pixels: a softmax over every pixel's squared colour distance to it (pixels in [-1, 1]). A
# colour 0.5 away then weighs e^-10 as much as an exact match, so neighbouring colours do not blur together.
FIND_SHARPNESS = 20.0
PROTOTYPES = 8  # colours to look for: more than a scene's objects and background, so k-means need not merge two
GLIMPSE = 13  # pixels along the side of the window read around each object: the scenes' objects are 9 wide


def pixel_grid(size: int, device) -> torch.Tensor:
    """(S*S,2): the (x, y) of each pixel in [-1, 1], row-major."""
    ramp = torch.linspace(-1, 1, size, device=device)
    ys, xs = torch.meshgrid(ramp, ramp, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


class ObjectEncoder(nn.Module):
    """Image (B,3,S,S) -> objects (B, K, dim + 2): for each colour prototype, what its pixels look like and where they are.

    A prototype's pixels are found by their colour distance to it: a softmax over the image gives their
    centroid; their closeness, sampled in a small window around that centroid (a glimpse), gives their
    silhouette, which a small MLP reads. The glimpse is centred on the object, so the MLP learns one
    silhouette for a shape wherever it stands."""

    def __init__(self, dim: int):
        super().__init__()
        self.prototypes = nn.Parameter(torch.zeros(PROTOTYPES, 3))  # colours objects come in: seeded from data
        self.read = nn.Sequential(nn.Linear(GLIMPSE * GLIMPSE, dim), nn.GELU(), nn.Linear(dim, dim))
        steps = torch.arange(GLIMPSE, dtype=torch.float32) - (GLIMPSE - 1) / 2  # pixel offsets around the centre
        ys, xs = torch.meshgrid(steps, steps, indexing="ij")
        self.register_buffer("window", torch.stack([xs, ys], dim=2), persistent=False)  # (G,G,2) in pixels

    @torch.no_grad()
    def seed_prototypes(self, images: torch.Tensor) -> None:
        """Start the prototypes at the colours the training images are made of ((N,3,H,W) uint8): nothing here
        knows a palette; training moves them on."""
        self.prototypes.copy_(palette_of(images, PROTOTYPES) * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, size, _ = x.shape
        pixels = (x * 2 - 1).flatten(2).transpose(1, 2)  # (B,S*S,3)
        distance = ((pixels[:, None] - self.prototypes[None, :, None]) ** 2).sum(dim=3)  # (B,K,S*S)
        centre = torch.softmax(-FIND_SHARPNESS * distance, dim=2) @ pixel_grid(size, x.device)  # (B,K,2) in [-1,1]
        closeness = torch.exp(-FIND_SHARPNESS * distance).view(b * PROTOTYPES, 1, size, size)
        # pixel_grid puts pixel i at -1 + 2i/(S-1): align_corners=True samples on the same grid
        where = centre.view(b * PROTOTYPES, 1, 1, 2) + self.window[None] * (2 / (size - 1))  # (B*K,G,G,2)
        glimpse = F.grid_sample(closeness, where, padding_mode="zeros", align_corners=True)  # (B*K,1,G,G)
        return torch.cat([self.read(glimpse.view(b, PROTOTYPES, -1)), centre], dim=2)  # (B,K,dim+2)


class RelationHead(nn.Module):
    """(cells (B,C,D+H+3K), question (B,2D)) -> logits (B,A): find the named object, relate every cell to it, answer.

    The question comes as two summaries (critic.QuestionEncoder with pick_word): what is asked, and the
    word that names the object; the object is found by the name alone, as one of the colour prototypes.

    g's first layer on [o*, o_j, q] is a sum of linear maps, and the cells' map is computed once per image
    in CellEncoder (the last `hidden` features of each cell), so per question only sums run over the
    cells: C pairs stay cheap on a CPU. Each pair also gets its cell's position relative to o* (dx, dy, dx^2 + dy^2): the relations asked
    about are spatial, and handing g the offset saves it learning to subtract coordinates.
    """

    def __init__(self, dim: int, hidden: int, n_answers: int, dropout: float):
        super().__init__()
        self.find_prototype = nn.Linear(dim, PROTOTYPES)  # which colour the name means
        self.dim, self.hidden = dim, hidden
        self.pair = nn.Sequential(nn.Linear(3 * dim + 4, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU())  # g([o_k, offset, is it o*, o*, q])
        self.pair_score = nn.Linear(hidden, 1)
        self.answer = nn.Sequential(nn.Linear(dim + 2 + dim + dim + 2 + 2 * hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                    nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, n_answers))  # f

    def forward(self, found: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        d = self.dim
        objects, at = found[..., :d], found[..., d:]  # (B,K,D) what each prototype's object looks like, (B,K,2) where
        q, name = question[:, :d], question[:, d:]  # (B,D) what is asked, (B,D) the object it names
        which = torch.softmax(self.find_prototype(name), dim=1)  # (B,K)
        named = (which[:, :, None] * objects).sum(dim=1)  # (B,D)
        named_at = (which[:, :, None] * at).sum(dim=1)  # (B,2)
        offset = at - named_at[:, None]  # (B,K,2)
        k = objects.shape[1]
        pairs = torch.cat([objects, offset, (offset ** 2).sum(dim=2, keepdim=True), which[:, :, None],
                           torch.cat([named, q], dim=1)[:, None].expand(-1, k, -1)], dim=2)
        h = self.pair(pairs)  # (B,K,H): g(o_k, o*, q) for every object k
        pick = torch.softmax(SHARPNESS * self.pair_score(h).squeeze(2), dim=1)  # (B,K): e.g. the closest object
        picked = (pick[:, :, None] * objects).sum(dim=1)  # (B,D)
        picked_at = (pick[:, :, None] * at).sum(dim=1)  # (B,2)
        related = torch.cat([picked, picked_at, (pick[:, :, None] * h).sum(dim=1), h.sum(dim=1)], dim=1)
        return self.answer(torch.cat([named, named_at, q, related], dim=1))  # (B,A)
