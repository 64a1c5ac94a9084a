"""Why residual networks train: the branch's size against the shortcut's (De and Smith 2020),
the gradient at every layer, and the gradient carried by paths of each length (Veit, Wilber and
Belongie 2016).

A residual block computes ``relu(s(x) + F(x))``; its backward is ``D (S + J_F)``, with ``D`` the
ReLU's mask and ``S`` the shortcut's Jacobian, so the gradient at the first block's input is a
sum over the 2^n ways of picking, at each block, the shortcut or the branch: a *path* through
``k`` branches. ``PathGradients`` computes the gradient of one path set exactly: the forward is
the whole network, and the backward goes through the branches chosen and the shortcuts of the
rest (``relu(s(x).detach() + F(x))`` for a chosen block, ``relu(s(x) + F(x).detach())`` for
another).
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reslearn.models import ResNet


@dataclass(frozen=True)
class BranchRatio:
    """One residual block's std(F(x)) / std(shortcut(x)); ``index`` counts blocks from 1."""

    index: int
    branch_std: float
    shortcut_std: float

    @property
    def ratio(self) -> float:
        """The branch's std over the shortcut's."""
        return self.branch_std / self.shortcut_std


@torch.no_grad()
def branch_ratios(model: ResNet, x: torch.Tensor) -> list[BranchRatio]:
    """Each residual block's branch and shortcut std on the inputs ``x`` (over every image,
    channel and position), the network in the mode it is in: train mode at initialisation
    (batch statistics, as training sees it), eval mode once trained."""
    _need_residual(model, "the branch/shortcut ratio")
    h = model.forward_stem(x)
    ratios = []
    for index, block in enumerate(model.blocks(), 1):
        branch, shortcut = block.branch(h), block.skip(h)
        ratios.append(BranchRatio(index, branch.std().item(), shortcut.std().item()))
        h = block(h)
    return ratios


def layer_gradient_norms(model: ResNet, x: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """The mean over images of the norm of d(loss)/d(activation) at the stem's output and at
    each block's output, input side first; the loss is the cross-entropy of each image."""
    h = model.forward_stem(x)
    outputs = [h]
    for block in model.blocks():
        h = block(h)
        outputs.append(h)
    loss = F.cross_entropy(model.forward_head(h), labels, reduction="sum")
    grads = torch.autograd.grad(loss, outputs)
    return [_mean_norm(g) for g in grads]


class PathGradients:
    """The gradient at the first block's input through chosen residual branches.

    One forward pass of ``model`` (in the mode it is in) on ``x``; each ``through(branches)``
    is then one backward pass through the branches of the blocks ``branches`` (indices into
    ``model.blocks()``) and the shortcuts of the others. The loss is each image's cross-entropy.
    """

    def __init__(self, model: ResNet, x: torch.Tensor, labels: torch.Tensor) -> None:
        _need_residual(model, "the path study")
        h = model.forward_stem(x).detach()
        self._pieces = []
        for block in model.blocks():
            into = h.detach().requires_grad_()
            branch, shortcut = block.branch(into), block.skip(into)
            total = branch + shortcut
            self._pieces.append((into, branch, shortcut, total > 0))
            h = torch.relu(total.detach())
        out = h.requires_grad_()
        loss = F.cross_entropy(model.forward_head(out), labels, reduction="sum")
        self._at_output = torch.autograd.grad(loss, out)[0]
        self.blocks = len(self._pieces)

    def through(self, branches: Collection[int]) -> torch.Tensor:
        """The gradient (N, C, H, W) at the first block's input of the paths that go through
        exactly the branches of ``branches`` and the shortcuts of every other block."""
        g = self._at_output
        chosen = set(branches)
        for j in reversed(range(self.blocks)):
            into, branch, shortcut, mask = self._pieces[j]
            g = g * mask
            if j in chosen:
                g = torch.autograd.grad(branch, into, g, retain_graph=True)[0]
            elif shortcut is not into:  # option A's subsample-and-pad, or a projection
                g = torch.autograd.grad(shortcut, into, g, retain_graph=True)[0]
        return g

    def norm(self, branches: Collection[int]) -> float:
        """The mean over images of the norm of ``through(branches)``."""
        return _mean_norm(self.through(branches))


def path_subsets(blocks: int, k: int, draws: int, seed: int) -> list[tuple[int, ...]]:
    """Up to ``draws`` distinct seeded random sets of ``k`` of ``blocks`` block indices (all of
    them when there are no more than ``draws``)."""
    if not 0 <= k <= blocks:
        raise ValueError(f"a path goes through 0..{blocks} branches; got {k}")
    if math.comb(blocks, k) <= draws:
        from itertools import combinations

        return list(combinations(range(blocks), k))
    rng, found = random.Random(f"{seed}:{k}"), set()
    while len(found) < draws:
        found.add(tuple(sorted(rng.sample(range(blocks), k))))
    return sorted(found)


def gradient_window(magnitudes: Sequence[float], share: float = 0.9) -> tuple[int, int, float]:
    """(shortest, longest, fraction of paths) of the narrowest range of path lengths k that
    carries ``share`` of the total gradient, sum_k C(n, k) * magnitude(k); ``magnitudes[k]``
    is the mean gradient norm of one path through k branches, n = len(magnitudes) - 1."""
    n = len(magnitudes) - 1
    total = [math.comb(n, k) * m for k, m in enumerate(magnitudes)]
    whole = sum(total)
    best = (0, n)
    for low in range(n + 1):
        for high in range(low, n + 1):
            if sum(total[low : high + 1]) >= share * whole:
                if high - low < best[1] - best[0]:
                    best = (low, high)
                break
    paths = sum(math.comb(n, k) for k in range(best[0], best[1] + 1))
    return best[0], best[1], paths / 2**n


def _mean_norm(g: torch.Tensor) -> float:
    return g.detach().flatten(1).norm(dim=1).mean().item()


def _need_residual(model: ResNet, what: str) -> None:
    if not any(block.residual for block in model.blocks()):
        raise ValueError(
            f"{what} needs a network with residual blocks; this one is plain (shortcut=None): "
            "give a resnet, e.g. resnet56"
        )
