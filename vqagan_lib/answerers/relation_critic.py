"""A critic that can answer relational questions: a relation module over the objects of a scene.

Santoro et al. 2017 ("A simple neural network module for relational reasoning", arXiv
1706.01427) show that a CNN whose pooled features meet the question in an MLP answers
"what shape is the red object?" well but "what shape is the object closest to the red one?"
barely above chance: pooling throws away where things are. Their relation network keeps every
cell of the feature map as an "object" (features + its coordinates) and scores every pair of
cells with an MLP g, conditioned on the question, then sums. With C cells that is C^2 pairs
per question. Our questions always name one object and relate the others to it, so we keep
one side of each pair fixed to the object the question names; and our objects are not feature-map cells
but the objects themselves, found by colour (data/colour_objects.py):

    image -> K colour prototypes (started at a k-means of the training pixels) -> per prototype k:
             where its pixels are (centroid c_k) and the silhouette they make (read by an MLP) -> o_k
    question -> GRU -> q (B,D), and one word it picks (the object's name) -> n (B,D)
    find:    which = softmax_k(w(n))                  o* = sum_k which_k o_k, c* likewise    the object named
    relate:  h_k = g(o_k, c_k - c*, which_k, o*, q)   two layers, over the K objects         K pairs, not K^2
             pick = softmax_k(s(h))                                                          e.g. the closest
             r = [sum_k pick_k o_k, sum_k pick_k c_k, sum_k pick_k h_k, sum_k h_k]          closest/farthest: pick; count: sum
    answer:  f(o*, c*, q, r) -> logits

The "find" step is learned, not a lookup: nothing here knows the dataset's colours (the prototypes train
on from the data's own colours, and which one a name means is learnt from the answers). Why objects by
colour rather than the paper's cells: with C = 256 cells a question's named object is a few cells, an
attention over them starts nearly flat, and on a CPU it stayed at chance for hundreds of steps; choosing
one of K prototypes is learnt quickly, and K pairs a question are cheap. The price is generality: the
critic suits flat scenes of distinctly coloured objects, which is the world it judges.
The two halves, `image(x)` (once per image) and `fuse(objects, q)` (once per question), are those of the
pooled critic, so trainers share one image pass among an image's questions.
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import torch
import torch.nn as nn

from vqagan_lib.data.pixels import palette_of
from vqagan_lib.data.colour_objects import GLIMPSE, find_by_colour


# The pick scores are scaled up: freshly initialised layers give scores too close together for a softmax
# to single out one object.
SHARPNESS = 8.0
PROTOTYPES = 8  # colours to look for: more than a scene's objects and background, so k-means need not merge two


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

    @torch.no_grad()
    def seed_prototypes(self, images: torch.Tensor) -> None:
        """Start the prototypes at the colours the training images are made of ((N,3,H,W) uint8): nothing here
        knows a palette; training moves them on."""
        self.prototypes.copy_(palette_of(images, PROTOTYPES) * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre, silhouette = find_by_colour(x, self.prototypes)  # (B,K,2), (B,K,G*G)
        return torch.cat([self.read(silhouette), centre], dim=2)  # (B,K,dim+2)


class RelationHead(nn.Module):
    """(objects (B,K,D+2), question (B,2D)) -> logits (B,A): find the named object, relate every object to it, answer.

    The question comes as two summaries (critic.QuestionEncoder with pick_word): what is asked, and the
    word that names the object; the object is found by the name alone, as one of the K colour prototypes.
    g sees each object with its offset from the named one (dx, dy, dx^2 + dy^2; the relations asked about
    are spatial, and handing g the offset saves it learning to subtract coordinates) and how much of it is
    the named one (so that "the closest other object" can leave it out). K pairs a question.
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
