"""On a machine with a CUDA GPU, every model computes on the GPU what it computes on the CPU.
Skipped where there is no GPU (CI has none).

The comparison is piece by piece (stem, each block, head), each piece fed the same input on both
devices: end to end, an untrained deep network amplifies the last-bit differences between the
devices' kernels (plain-56 and ResNet-152 differ by more than 1e-4 that way), which says nothing
about whether each piece is right.
"""

import copy

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


def pieces(model):
    return [model.forward_stem, *model.blocks(), model.forward_head]


@pytest.mark.parametrize("name", reslearn.list_models())
def test_gpu_matches_cpu(name: str) -> None:
    # Train mode: BN normalises with batch statistics, as in training.
    model = reslearn.create_model(name).train()
    gpu_model = copy.deepcopy(model).cuda()
    size = SIZE[model_info(name).family]
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        for cpu_piece, gpu_piece in zip(pieces(model), pieces(gpu_model)):
            expected = cpu_piece(x)
            got = gpu_piece(x.cuda()).cpu()
            error = ((got - expected).norm() / expected.norm()).item()
            assert error < 1e-5, f"{name}: {cpu_piece}: relative error {error:.2e}"
            x = expected
        assert torch.isfinite(gpu_model(torch.randn(4, 3, size, size, device="cuda"))).all()
