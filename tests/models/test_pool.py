"""The head's pooling (``pool``): global average (the paper's), global max, or none (the last map
flattened into the classifier)."""

import pytest
import torch

import reslearn


def test_the_three_heads():
    x = torch.randn(2, 3, 32, 32)
    avg = reslearn.create_model("resnet20").eval()
    assert avg.pool == "avg" and isinstance(avg.head_pool, torch.nn.AdaptiveAvgPool2d)
    maxed = reslearn.create_model("resnet20", pool="max").eval()
    maxed.load_state_dict(avg.state_dict())  # the same parameters
    features = avg.forward_features(x)
    with torch.no_grad():
        expected = avg.fc(features.amax(dim=(2, 3)))
        torch.testing.assert_close(maxed(x), expected)
    flat = reslearn.create_model("resnet20", pool="flatten").eval()
    assert flat.fc.in_features == 64 * 8 * 8  # the 8 x 8 last map of a 32-pixel image
    with torch.no_grad():
        torch.testing.assert_close(flat(x), flat.fc(flat.forward_features(x).flatten(1)))
    small = reslearn.create_model("resnet20", pool="flatten", map_size=4, num_classes=3)
    assert small.fc.in_features == 64 * 4 * 4
    small.reset_classifier(5)
    assert small.fc.in_features == 64 * 4 * 4 and small.num_classes == 5


def test_flatten_fixes_the_input_size_and_bad_pools_are_refused():
    flat = reslearn.create_model("resnet20", pool="flatten")
    with pytest.raises(ValueError, match="fixes the input at 32x32"):
        flat(torch.randn(1, 3, 40, 40))
    with pytest.raises(ValueError, match="pool must be one of avg, max, flatten"):
        reslearn.create_model("resnet20", pool="mean")
