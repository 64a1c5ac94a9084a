"""The lesion study (Veit, Wilber and Belongie 2016, "Residual networks behave like ensembles of
relatively shallow networks"): blocks deleted from a trained network at test time.

A deleted residual block becomes its shortcut, ``y = shortcut(x)``: the identity, option A's
subsample-and-pad at a downsampling block, the projection for options B and C (without the
ReLU that followed the addition). A deleted plain block becomes the identity, which only a block
whose output has its input's shape allows. Batch norm keeps the statistics it was trained with:
nothing is re-estimated after a deletion.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Sequence

import torch
from torch import nn

from reslearn.models import ResNet


def deletable_blocks(model: ResNet, x: torch.Tensor) -> list[int]:
    """Indices (into ``model.blocks()``) of the blocks that can be deleted: every residual
    block, and each plain block whose output on ``x`` (a sample input) has its input's shape."""
    blocks = model.blocks()
    shapes: list[tuple[torch.Size, torch.Size]] = []
    handles = [
        block.register_forward_hook(lambda _m, i, out: shapes.append((i[0].shape, out.shape)))
        for block in blocks
    ]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    return [
        j for j, (block, (into, out)) in enumerate(zip(blocks, shapes))
        if block.residual or into == out
    ]  # fmt: skip


def deleted_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What a deleted block passes on: its shortcut's output, or ``x`` for a plain block."""
    return block.skip(x) if block.residual else x


def lesioned_logits(model: ResNet, x: torch.Tensor, deleted: Collection[int]) -> torch.Tensor:
    """The logits of ``model`` on ``x`` with the blocks ``deleted`` (indices into
    ``model.blocks()``) replaced by what ``deleted_block`` passes on."""
    h = model.forward_stem(x)
    for j, block in enumerate(model.blocks()):
        h = deleted_block(block, h) if j in deleted else block(h)
    return model.forward_head(h)


def random_deletions(
    candidates: Sequence[int], k: int, draws: int, seed: int
) -> list[tuple[int, ...]]:
    """``draws`` seeded random sets of ``k`` distinct blocks out of ``candidates``, sorted."""
    if not 1 <= k <= len(candidates):
        raise ValueError(f"k must lie in 1..{len(candidates)} (the deletable blocks); got {k}")
    rng = random.Random(f"{seed}:{k}")  # each k its own stream: a longer curve keeps its start
    return [tuple(sorted(rng.sample(list(candidates), k))) for _ in range(draws)]


@torch.inference_mode()
def count_errors(
    model: ResNet,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    deletions: Sequence[Collection[int]],
) -> list[int]:
    """How many images ``model`` classifies wrongly with each set of ``deletions`` deleted,
    over ``batches`` of (inputs, labels); the empty set is the whole network.

    ``model`` runs as it is (pass it through ``reslearn.evaluate.inference_model`` to fold
    its batch norm). The sets are visited in the order of their keep/delete strings, so a set
    starts from the activations of the longest prefix it shares with the one before: every
    block output is computed once per distinct prefix, not once per set.
    """
    blocks = model.blocks()
    masks = [tuple(j in set(d) for j in range(len(blocks))) for d in deletions]
    order = sorted(range(len(masks)), key=lambda i: masks[i])
    wrong = [0] * len(masks)
    for x, labels in batches:
        states = [model.forward_stem(x)]  # states[j]: the input of block j for the last mask
        last: tuple[bool, ...] | None = None
        for i in order:
            shared = _common_prefix(masks[i], last)
            del states[shared + 1 :]
            h = states[shared]
            for j in range(shared, len(blocks)):
                h = deleted_block(blocks[j], h) if masks[i][j] else blocks[j](h)
                states.append(h)
            wrong[i] += int((model.forward_head(h).argmax(1) != labels).sum())
            last = masks[i]
    return wrong


def _common_prefix(a: tuple[bool, ...], b: tuple[bool, ...] | None) -> int:
    """How many leading entries ``a`` and ``b`` share (0 when ``b`` is None)."""
    if b is None:
        return 0
    shared = 0
    while shared < len(a) and a[shared] == b[shared]:
        shared += 1
    return shared
