"""Path gradients add up to the network's own gradient, the shortcut-only path is autograd's
gradient through a network whose branches are detached, and the other measurements check out."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslearn.analysis.gradient_paths import (
    PathGradients,
    branch_ratios,
    gradient_window,
    layer_gradient_norms,
    path_subsets,
)
from reslearn.models import ResNet
from reslearn.models.blocks import BasicBlock


def _net(shortcut, layers) -> ResNet:
    torch.manual_seed(0)
    model = ResNet(BasicBlock, layers, widths=(4, 8)[: len(layers)], stem="cifar",
                   num_classes=5, shortcut=shortcut)  # fmt: skip
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2)
            m.bias.data.normal_(0, 0.5)
    return model.eval()


def _autograd(model, x, labels, detach_branches: bool) -> torch.Tensor:
    """d(loss)/d(stem output) by autograd, optionally through ``relu(s(x) + F(x).detach())``."""
    start = model.forward_stem(x).detach().requires_grad_()
    h = start
    for block in model.blocks():
        if detach_branches:
            h = torch.relu(block.skip(h) + block.branch(h).detach())
        else:
            h = block(h)
    loss = F.cross_entropy(model.forward_head(h), labels, reduction="sum")
    return torch.autograd.grad(loss, start)[0]


@pytest.mark.parametrize(("shortcut", "layers"), [("A", (3,)), ("A", (2, 1)), ("B", (2, 1))])
def test_paths_add_up_to_the_full_gradient(shortcut, layers):
    model = _net(shortcut, layers)
    x, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    paths = PathGradients(model, x, labels)
    subsets = [s for k in range(4) for s in itertools.combinations(range(3), k)]
    total = sum(paths.through(s) for s in subsets)
    full = _autograd(model, x, labels, detach_branches=False)
    assert torch.allclose(total, full, atol=1e-5, rtol=1e-4)
    shortcuts_only = _autograd(model, x, labels, detach_branches=True)
    assert torch.allclose(paths.through(()), shortcuts_only, atol=1e-6)
    assert paths.norm((0, 1, 2)) > 0


def test_a_plain_network_has_no_paths():
    model = _net(None, (3,))
    with pytest.raises(ValueError, match="needs a network with residual blocks"):
        PathGradients(model, torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))


def test_ratios_gradient_norms_subsets_and_window():
    model = _net("A", (3,))
    x, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    ratios = branch_ratios(model, x)
    with torch.no_grad():
        h = model.forward_stem(x)
        assert ratios[0].ratio == pytest.approx((model.layer1[0].branch(h).std() / h.std()).item())
    norms = layer_gradient_norms(model, x, labels)
    assert len(norms) == 4 and norms[0] == pytest.approx(
        _autograd(model, x, labels, False).flatten(1).norm(dim=1).mean().item(), rel=1e-5
    )
    assert path_subsets(3, 1, 5, seed=0) == [(0,), (1,), (2,)]  # all, when there are few
    drawn = path_subsets(27, 5, 8, seed=0)
    assert len(set(drawn)) == 8 and drawn == path_subsets(27, 5, 8, seed=0)
    # magnitudes halving per branch over n = 10: the total peaks at k = 10/3
    low, high, fraction = gradient_window([0.5**k for k in range(11)])
    assert low <= 3 <= high and 0 < fraction < 1
