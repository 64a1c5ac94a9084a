"""The lesion study: a network with a block deleted computes what a network built without that
block computes, folded or not, and the shared-prefix counting agrees with one pass per set."""

import copy

import pytest
import torch
from torch import nn

from reslearn.analysis.lesion import (
    count_errors,
    deletable_blocks,
    lesioned_logits,
    random_deletions,
)
from reslearn.evaluate import inference_model
from reslearn.models import ResNet
from reslearn.models.blocks import BasicBlock, ZeroPadShortcut


def _net(shortcut, layers=(2, 2)) -> ResNet:
    torch.manual_seed(0)
    model = ResNet(BasicBlock, layers, widths=(4, 8), stem="cifar", num_classes=5,
                   shortcut=shortcut)  # fmt: skip
    for m in model.modules():  # BN statistics and affine parameters that transform
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.2, 1.5)
            m.bias.data.normal_(0, 0.5)
    return model.eval()


def _without_second_block(model: ResNet) -> ResNet:
    """The network built with one block fewer in its first stage, the other weights copied."""
    smaller = ResNet(BasicBlock, (1, 2), widths=(4, 8), stem="cifar", num_classes=5,
                     shortcut=model.shortcut)  # fmt: skip
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("layer1.1.")}
    smaller.load_state_dict(state)
    return smaller.eval()


def _without_downsampling_block(model: ResNet) -> nn.Module:
    """The network whose first block of stage 2 is replaced by its shortcut, built by hand:
    option A a fresh zero-pad shortcut, B and C the block's projection (conv + BN)."""
    hand = copy.deepcopy(model)
    first = hand.layer2[0]
    if model.shortcut == "A":
        shortcut = ZeroPadShortcut(4, 8, stride=2)
    else:
        shortcut = first.downsample
    hand.layer2 = nn.Sequential(shortcut, hand.layer2[1])
    return hand


X = torch.randn(6, 3, 16, 16)


def _hand_built(model: ResNet, index: int) -> nn.Module:
    """The network built without block ``index``: one block fewer in stage 1 for an identity
    shortcut, else that block replaced by its shortcut module (option C's projection)."""
    if index == 1 and model.shortcut != "C":
        return _without_second_block(model)
    if index == 2:
        return _without_downsampling_block(model)
    hand = copy.deepcopy(model)
    hand.layer1 = nn.Sequential(hand.layer1[0], hand.layer1[1].downsample)
    return hand


@pytest.mark.parametrize("shortcut", ["A", "B", "C"])
@pytest.mark.parametrize("index", [1, 2])
def test_a_deleted_block_is_the_network_built_without_it(shortcut, index):
    model = _net(shortcut)
    folded = inference_model(model, channels_last=False)
    with torch.no_grad():
        expected = _hand_built(model, index)(X)
        mine, mine_folded = lesioned_logits(model, X, {index}), lesioned_logits(folded, X, {index})
        whole = model(X)
    assert (mine - expected).abs().max() < 1e-5
    assert (mine_folded - expected).abs().max() < 1e-4
    assert (whole - expected).abs().max() > 1e-3  # the deletion matters
    wrong = count_errors(folded, [(X, expected.argmax(1))], [(), (index,)])
    assert wrong[1] == 0


def test_a_plain_block_is_deleted_only_where_its_shape_stays():
    model = _net(None)
    assert deletable_blocks(model, X) == [0, 1, 3]  # layer2.0 halves the map and adds channels
    with torch.no_grad():
        expected = _without_second_block(model)(X)
        assert torch.allclose(lesioned_logits(model, X, {1}), expected, atol=1e-5)
    assert deletable_blocks(_net("A"), X) == [0, 1, 2, 3]


def test_shared_prefixes_count_what_one_pass_per_set_counts():
    model = inference_model(_net("A", layers=(3, 3)), channels_last=False)
    x = torch.randn(20, 3, 16, 16)
    labels = torch.randint(0, 5, (20,))
    sets = [(), (0,), (5,), (2, 4), (0, 5), (1, 2, 3), (5,), (0, 1, 2, 3, 4, 5)]
    wrong = count_errors(model, [(x[:7], labels[:7]), (x[7:], labels[7:])], sets)
    with torch.no_grad():
        direct = [int((lesioned_logits(model, x, set(s)).argmax(1) != labels).sum()) for s in sets]
    assert wrong == direct


def test_random_deletions_are_seeded_distinct_blocks():
    draws = random_deletions([0, 1, 3, 4, 5], 3, 5, seed=0)
    assert draws == random_deletions([0, 1, 3, 4, 5], 3, 5, seed=0)
    assert all(len(set(d)) == 3 and set(d) <= {0, 1, 3, 4, 5} for d in draws)
    with pytest.raises(ValueError, match=r"k must lie in 1\.\.5"):
        random_deletions([0, 1, 3, 4, 5], 6, 5, seed=0)
