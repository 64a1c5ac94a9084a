"""On a machine with a CUDA GPU, every model computes on the GPU what it computes on the CPU.
Skipped where there is no GPU (CI has none)."""

import pytest
import torch

import reslearn
from reslearn.models import model_info

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

SIZE = {"cifar": 32, "imagenet": 64}


@pytest.fixture(autouse=True)
def _no_tf32():
    # TF32 would make the GPU's fp32 differ from the CPU's by ~1e-3 and hide a real mismatch.
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("name", reslearn.list_models())
def test_gpu_matches_cpu(name: str) -> None:
    # Train mode: BN normalises with batch statistics. In eval mode an untrained network's BN
    # is the identity, and resnet1202's 600 residual additions overflow fp32 on any device.
    model = reslearn.create_model(name).train()
    size = SIZE[model_info(name).family]
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda()).cpu()
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= 1e-4 * max(scale, 1.0)
