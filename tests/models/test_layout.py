"""The layout-keeping operators (reslearn.models.layout) against the autograd operators they
replace, on random inputs: the same outputs and gradients, and gradients laid out like the
input (which is what they are for)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslearn.models import ZeroPadShortcut, create_model
from reslearn.models.layout import GlobalAvgPool2d

CL = torch.channels_last


def _reference_option_a(x, out_planes, before, stride):
    """Option A as autograd's slice and pad (the operators the layout-keeping one replaces)."""
    x = x[:, :, ::stride, ::stride] if stride > 1 else x
    extra = out_planes - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, before, extra - before))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("zero_pad", ["after", "both"])
@pytest.mark.parametrize("layout", [CL, torch.contiguous_format])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_option_a_matches_slice_and_pad(stride, zero_pad, layout, dtype) -> None:
    shortcut = ZeroPadShortcut(6, 16 if stride == 2 else 10, stride)
    shortcut.zero_pad = zero_pad
    base = torch.randn(4, 6, 10, 10).to(dtype).contiguous(memory_format=layout)
    ours, theirs = base.clone().requires_grad_(), base.clone().requires_grad_()
    out = shortcut(ours)
    extra = shortcut.out_planes - 6
    before = extra // 2 if zero_pad == "both" else 0
    expected = _reference_option_a(theirs, shortcut.out_planes, before, stride)
    assert torch.equal(out, expected)
    grad = torch.randn(expected.shape).to(dtype).contiguous(memory_format=layout)
    out.backward(grad)
    expected.backward(grad)
    assert torch.equal(ours.grad, theirs.grad)
    if layout is CL:
        assert ours.grad.is_contiguous(memory_format=CL)
        assert out.is_contiguous(memory_format=CL)


def test_option_a_check_can_fail() -> None:
    """A shortcut that puts its channels in the wrong place is caught by the comparison."""
    shortcut = ZeroPadShortcut(6, 16, 2)
    shortcut.zero_pad = "both"
    x = torch.randn(2, 6, 8, 8, requires_grad=True)
    assert not torch.equal(shortcut(x), _reference_option_a(x, 16, 0, 2))


@pytest.mark.parametrize("layout", [CL, torch.contiguous_format])
def test_global_average_pool_matches_adaptive_pool(layout) -> None:
    base = torch.randn(3, 8, 5, 7).contiguous(memory_format=layout)
    ours, theirs = base.clone().requires_grad_(), base.clone().requires_grad_()
    out, expected = GlobalAvgPool2d()(ours), nn.AdaptiveAvgPool2d(1)(theirs)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-7)
    grad = torch.randn(expected.shape)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-6, atol=1e-7)
    assert ours.grad.is_contiguous(memory_format=layout)
    assert isinstance(GlobalAvgPool2d(), nn.AdaptiveAvgPool2d)


def test_whole_network_gradients_unchanged() -> None:
    """ResNet-20 (option A, channels_last, fp32): every parameter's gradient as with autograd's
    operators, within fp32 rounding of the different summation order."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10).to(memory_format=CL)
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, ZeroPadShortcut):
            module.keep_layout = False
    plain.head_pool = nn.AdaptiveAvgPool2d(1)
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=CL)
    y = torch.randint(0, 10, (8,))
    for net in (model, plain):
        F.cross_entropy(net(x), y).backward()
    for (name, ours), theirs in zip(model.named_parameters(), plain.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-6, msg=name)
