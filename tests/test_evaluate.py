"""Batched evaluation against a brute-force numpy oracle, and the confusion-matrix plot."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import reslearn
from reslearn.evaluate import Evaluation, evaluate, evaluate_logits, predict_logits
from reslearn.report import plot_confusion


class FixedLogits(torch.nn.Module):
    """A 'network' whose logits are its inputs: inputs (N, 1, 1, K) -> logits (N, K)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        return x.flatten(1)


def oracle(logits: np.ndarray, labels: np.ndarray) -> dict:
    """The metrics computed the slow, obvious way."""
    n, k = logits.shape
    top = min(5, k)
    order = np.argsort(-logits, axis=1, kind="stable")
    confusion = np.zeros((k, k), dtype=np.int64)
    for true, predicted in zip(labels, order[:, 0]):
        confusion[true, predicted] += 1
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return {
        "top1_error": float(np.mean(order[:, 0] != labels)),
        "top5_error": float(np.mean([lab not in row[:top] for lab, row in zip(labels, order)])),
        "loss": float(-log_softmax[np.arange(n), labels].mean()),
        "confusion": confusion,
        "per_class": [
            confusion[c, c] / confusion[c].sum() if confusion[c].sum() else math.nan
            for c in range(k)
        ],
    }


@pytest.mark.parametrize("n,k,batch_size", [(1037, 10, 100), (250, 3, 64), (64, 12, 64)])
def test_metrics_match_numpy_oracle(n, k, batch_size) -> None:
    rng = np.random.default_rng(n + k)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    labels = rng.integers(0, k, size=n)
    model = FixedLogits()
    result = evaluate(
        model,
        torch.from_numpy(logits).reshape(n, 1, 1, k),
        torch.from_numpy(labels),
        num_classes=k,
        batch_size=batch_size,
        precision="fp32",
    )
    expected = oracle(logits, labels)
    assert model.calls == [min(batch_size, n - i) for i in range(0, n, batch_size)]
    assert result.count == n
    assert result.top1_error == pytest.approx(expected["top1_error"], abs=1e-12)
    assert result.top5_error == pytest.approx(expected["top5_error"], abs=1e-12)
    assert result.loss == pytest.approx(expected["loss"], rel=1e-5)
    assert result.confusion.dtype == np.int64
    np.testing.assert_array_equal(result.confusion, expected["confusion"])
    np.testing.assert_allclose(result.per_class_accuracy, expected["per_class"])
    if k <= 5:
        assert result.top5_error == 0.0


def test_absent_class_and_json() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 0.5]])
    result = evaluate_logits(logits, torch.tensor([0, 1, 1]), num_classes=3)
    assert result.top1_error == pytest.approx(1 / 3)
    assert math.isnan(result.per_class_accuracy[2])
    data = result.as_dict(["cat", "dog", "eel"])
    assert data["per_class_accuracy"] == {"cat": 1.0, "dog": 0.5, "eel": None}
    assert data["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    json.dumps(data, allow_nan=False)
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        result.as_dict(["cat", "dog"])


def test_ties_count_top5_no_worse_than_top1() -> None:
    logits = torch.zeros(4, 10)  # every class ties: argmax says class 0
    result = evaluate_logits(logits, torch.tensor([0, 3, 9, 0]), num_classes=10)
    assert result.top1_error == 0.5
    assert result.top5_error == 0.0


def test_bad_labels_and_arguments() -> None:
    logits = torch.randn(5, 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\); found 0..3"):
        evaluate_logits(logits, torch.tensor([0, 1, 2, 3, 0]), num_classes=3)
    with pytest.raises(ValueError, match="found -1..2"):
        evaluate_logits(logits, torch.tensor([0, 1, 2, -1, 0]), num_classes=3)
    with pytest.raises(ValueError, match=r"logits of shape \(N, 4\)"):
        evaluate_logits(logits, torch.tensor([0, 1, 2, 1, 0]), num_classes=4)
    model = reslearn.create_model("resnet20", num_classes=3)
    x = torch.randn(5, 3, 32, 32)
    with pytest.raises(ValueError, match="precision must be one of bf16, fp16, fp32"):
        predict_logits(model, x, precision="fp8")
    with pytest.raises(ValueError, match="batch size must be an integer >= 1"):
        predict_logits(model, x, batch_size=0)
    with pytest.raises(ValueError, match="5 inputs but 4 labels"):
        evaluate(model, x, torch.zeros(4, dtype=torch.long), num_classes=3)


def test_real_network_batching_precision_and_mode() -> None:
    model = reslearn.create_model("resnet20", num_classes=3)
    with torch.no_grad():
        model(torch.randn(16, 3, 16, 16))  # move the BN statistics off their initial values
    model.train()
    x = torch.randn(23, 3, 16, 16)
    one_pass = predict_logits(model, x, batch_size=23, precision="fp32", channels_last=False)
    batched = predict_logits(model, x, batch_size=5, precision="fp32")
    assert model.training  # restored
    assert one_pass.dtype == batched.dtype == torch.float32 and one_pass.shape == (23, 3)
    torch.testing.assert_close(batched, one_pass, atol=1e-4, rtol=1e-4)
    bf16 = predict_logits(model, x, batch_size=8)
    assert bf16.dtype == torch.float32
    assert (bf16 - one_pass).abs().max() < 0.1 * one_pass.abs().max() + 0.05
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), one_pass, atol=1e-4, rtol=1e-4)
    result = evaluate(model, x, torch.randint(0, 3, (23,)), num_classes=3, batch_size=10)
    assert isinstance(result, Evaluation) and result.confusion.sum() == 23


@pytest.mark.parametrize("k", [3, 10, 100])
def test_confusion_png(tmp_path, k) -> None:
    rng = np.random.default_rng(k)
    confusion = rng.integers(0, 20, size=(k, k)) + 50 * np.eye(k, dtype=np.int64)
    confusion[0] = 0  # a class without images must not divide by zero
    path = tmp_path / "confusion.png"
    plot_confusion(confusion, [f"class{i}" for i in range(k)], path, title="resnet20 on test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG" and min(image.size) >= 400


def test_confusion_shape_is_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"shape \(2, 2\) for 3 classes"):
        plot_confusion(np.eye(2, dtype=int), ["a", "b", "c"], tmp_path / "c.png")
