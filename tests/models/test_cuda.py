"""On a machine with a CUDA GPU: every model computes on the GPU what it computes on the CPU,
and trains in bf16 + channels_last. Skipped where there is no GPU (CI has none)."""

import pytest
import torch
import torch.nn.functional as F

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
    model = reslearn.create_model(name).eval()
    size = SIZE[model_info(name).family]
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda()).cpu()
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= 1e-4 * max(scale, 1.0)


@pytest.mark.parametrize("name", ["resnet20", "plain56", "resnet50"])
def test_bf16_channels_last_training_step(name: str) -> None:
    model = reslearn.create_model(name).cuda().to(memory_format=torch.channels_last)
    size = SIZE[model_info(name).family]
    x = torch.randn(8, 3, size, size, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, model.num_classes, (8,), device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(5):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]  # five steps on one batch must fit it a little
