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
    question -> GRU -> q (B,D), and one word it picks (the object's name) -> n (B,D)
    find:    a = softmax_j(w(o_j + n))             o* = sum_j a_j o_j     the object named
    relate:  h_j = g(o*, o_j, q)                   over every cell j      C pairs, not C^2
             r = [sum_j softmax(s(h))_j h_j , mean_j h_j]                 closest/farthest: attend; count: mean
    answer:  f(o*, r, q) -> logits

The "find" step is learned attention, not a colour lookup: nothing here knows the dataset's
colours or shapes. The cells are split into `image(x)` (once per image) and `fuse(cells, q)`
(once per question), the same two halves as the pooled critic, so trainers share one CNN pass
among an image's questions.
Introduced in notebooks/08_sort_of_clevr.ipynb.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class CellEncoder(nn.Module):
    """Image (B,3,S,S) -> cells (B, (S/2^k)^2, dim + hidden): stride-2 convs, each cell's mean pixel and coordinates appended,
    projected once per image into the features the head finds objects by (dim) and g's cell term (hidden)."""

    def __init__(self, channels: int, dim: int, downsamples: int, hidden: int):
        super().__init__()
        layers, cin = [], 3
        for k in range(downsamples):
            cout = channels * min(2 ** k, 2)
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.GELU(),
                       nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.GELU()]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(cin + 3 + 2, dim + hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x * 2 - 1)  # (B,C,s,s), pixels centred on 0
        b, _, s, _ = h.shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, s, device=x.device), torch.linspace(-1, 1, s, device=x.device), indexing="ij")
        coords = torch.stack([xs, ys]).expand(b, -1, -1, -1)  # (B,2,s,s): where each cell is
        colour = F.adaptive_avg_pool2d(x, s) * 2 - 1  # (B,3,s,s): each cell's own mean pixel, straight from the image
        cells = torch.cat([h, colour, coords], dim=1).flatten(2).transpose(1, 2)  # (B,s*s,C+3+2)
        return self.proj(cells)  # (B,s*s,dim+hidden)

# Attention scores are scaled up: a question names one object, which covers a few of the hundreds of
# cells, and freshly initialised layers give scores far too close together for a softmax to single it out.
# Unscaled, "left or right?" (answered from where the attention points) stays at chance through a long plateau.
SHARPNESS = 8.0


def cell_positions(n_cells: int, device) -> torch.Tensor:
    """(C,2): the (x, y) of each cell of a square grid of n_cells, in [-1, 1], in the order CellEncoder flattens them."""
    side = math.isqrt(n_cells)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side, device=device), torch.linspace(-1, 1, side, device=device), indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


class RelationHead(nn.Module):
    """(cells (B,C,D+H), question (B,2D)) -> logits (B,A): find the named object, relate every cell to it, answer.

    The question comes as two summaries (critic.QuestionEncoder with pick_word): what is asked, and the
    word that names the object; the object is found by the name alone.

    g's first layer on [o*, o_j, q] is a sum of linear maps, and the cells' map is computed once per image
    in CellEncoder (the last `hidden` features of each cell), so per question only sums run over the
    cells: C pairs stay cheap on a CPU. Each pair also gets its cell's position relative to o* (dx, dy, dx^2 + dy^2): the relations asked
    about are spatial, and handing g the offset saves it learning to subtract coordinates.
    """

    def __init__(self, dim: int, hidden: int, n_answers: int, dropout: float):
        super().__init__()
        self.find_question = nn.Linear(dim, dim)
        self.find_score = nn.Sequential(nn.GELU(), nn.Linear(dim, 1))  # additive attention: which cell is named
        self.dim = dim
        self.pair_offset = nn.Linear(3, hidden)
        self.pair_context = nn.Linear(2 * dim, hidden)  # [o*, q]
        self.pair_score = nn.Linear(hidden, 1)
        self.answer = nn.Sequential(nn.Linear(2 * dim + 2 + 2 * hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                    nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, n_answers))  # f

    def forward(self, cells: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        cells, pair_cell = cells[..., :self.dim], cells[..., self.dim:]  # (B,C,D), (B,C,H)
        q, name = question[:, :self.dim], question[:, self.dim:]  # (B,D) what is asked, (B,D) the object it names
        where = cell_positions(cells.shape[1], cells.device)  # (C,2)
        attend = torch.softmax(SHARPNESS * self.find_score(cells + self.find_question(name)[:, None]).squeeze(2), dim=1)  # (B,C)
        named = (attend[:, :, None] * cells).sum(dim=1)  # (B,D): the object the question names
        named_at = attend @ where  # (B,2): where it is
        offset = where[None] - named_at[:, None]  # (B,C,2)
        offset = torch.cat([offset, (offset ** 2).sum(dim=2, keepdim=True)], dim=2)  # (B,C,3)
        h = torch.relu(pair_cell + self.pair_offset(offset)
                       + self.pair_context(torch.cat([named, q], dim=1))[:, None])  # (B,C,H): g(o*, o_j, q)
        pick = torch.softmax(SHARPNESS * self.pair_score(h).squeeze(2), dim=1)  # (B,C): e.g. the closest object
        related = torch.cat([(pick[:, :, None] * h).sum(dim=1), h.mean(dim=1)], dim=1)  # (B,2H)
        return self.answer(torch.cat([named, named_at, q, related], dim=1))  # (B,A)
