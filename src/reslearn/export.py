"""A trained network out of Python: ONNX, TorchScript or a torch.export ExportedProgram, with the
input normalisation optionally inside the graph (the exported model then takes uint8 images),
checked against PyTorch's own outputs on real images before the file is put in place."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reslearn.atomic import temporary_beside
from reslearn.choices import EXPORT_FORMATS as FORMATS
from reslearn.choices import EXPORT_SUFFIXES as SUFFIXES
from reslearn.errors import UserError, one_line
from reslearn.weights import TrainedModel

#: Largest difference from PyTorch's fp32 logits an export may show.
TOLERANCE = 1e-4


class WithPreprocessing(nn.Module):
    """uint8 images (N, C, H, W) in, logits out: ``(x / 255 - mean) / std``, then the network."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images.float() / 255.0 - self.mean) / self.std)


@dataclass
class ExportReport:
    """What was written and how closely it reproduces PyTorch."""

    path: Path
    format: str
    images: int  # images the check ran on
    max_abs_difference: float
    uint8_input: bool
    dynamic_batch: bool


def export(
    trained: TrainedModel,
    path: str | os.PathLike,
    *,
    format: str,
    images: np.ndarray,
    dynamic_batch: bool = False,
    with_preprocessing: bool = False,
) -> ExportReport:
    """Write ``trained`` to ``path`` in ``format``; ``images`` (uint8, N x H x W x C) are what the
    check runs on. The file is written under a temporary name and moved into place only when
    the exported model's outputs agree with PyTorch's within ``TOLERANCE`` times the largest
    output (at least 1; fp32)."""
    if format not in FORMATS:
        raise UserError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    model = trained.model.float().eval().to("cpu")
    _check_finite(model)
    mean, std = trained.normalizer.mean.cpu(), trained.normalizer.std.cpu()
    module = WithPreprocessing(model, mean, std).eval() if with_preprocessing else model
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    inputs = pixels if with_preprocessing else (pixels.float() / 255.0 - mean) / std
    batch = inputs if dynamic_batch else inputs[:1]
    with torch.no_grad():
        expected = module(inputs).numpy()
    if not np.isfinite(expected).all():
        raise UserError(
            f"PyTorch's own outputs of these weights are not finite on {len(inputs)} check "
            "images (the weights are finite but overflow); nothing was written"
        )
    path = Path(path)
    writer, runner = _FORMATS[format]
    # the format's own suffix: torch.export.load reads only files ending in .pt2
    with temporary_beside(path, suffix=SUFFIXES[format]) as temporary:
        writer(module, batch, temporary, dynamic_batch)
        run = runner(temporary)
        if dynamic_batch:
            got = run(inputs.numpy())
        else:  # a fixed batch of one: one image at a time
            got = np.concatenate([run(inputs[i : i + 1].numpy()) for i in range(len(inputs))])
        difference = float(np.abs(got - expected).max())
        # relative to the logits' scale: a barely trained network's logits run into the
        # hundreds, where fp32 rounding alone passes an absolute 1e-4
        allowed = TOLERANCE * max(1.0, float(np.abs(expected).max()))
        if not difference <= allowed:
            raise UserError(
                f"the {format} export differs from PyTorch by {difference:.3g} (more than "
                f"{allowed:.3g}) on {len(inputs)} images; nothing was written"
            )
        os.replace(temporary, path)
    return ExportReport(path, format, len(inputs), difference, with_preprocessing, dynamic_batch)


def _check_finite(model: nn.Module) -> None:
    """Refuse weights holding inf or NaN: no export of them can match anything."""
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise UserError(
            f"the weights hold non-finite values ({len(bad)} tensors, e.g. {bad[0]}); nothing "
            "was written: export weights saved before training diverged (an earlier run or "
            "checkpoint)"
        )


def _batch_dim() -> torch.export.Dim:
    return torch.export.Dim("batch", min=1, max=4096)


def _write_onnx(module: nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError(
            "ONNX export needs the onnx and onnxscript packages: pip install 'reslearn[export]'"
        ) from None
    shapes = {"x": {0: _batch_dim()}} if dynamic else None
    wrapper = _Named(module)
    try:
        program = torch.onnx.export(
            wrapper, (example,), dynamo=True, dynamic_shapes=shapes, input_names=["images"],
            output_names=["logits"], verbose=False,
        )  # fmt: skip
        program.save(str(path))
    except Exception as error:  # noqa: BLE001 -- the exporter raises many kinds
        raise UserError(f"ONNX export failed: {one_line(error)}") from None


def _run_onnx(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    try:
        import onnxruntime
    except ImportError:
        raise UserError(
            "checking an ONNX export needs onnxruntime: pip install 'reslearn[export]'"
        ) from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _write_torchscript(module: nn.Module, example: torch.Tensor, path: Path, dynamic: bool):
    # TorchScript is deprecated in torch but still what libtorch (C++) deployments load; the
    # tracer's warnings are about the network's input checks, which tracing drops
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, str(path))


def _run_torchscript(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path))

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return loaded(torch.from_numpy(x)).numpy()

    return run


def _write_program(module: nn.Module, example: torch.Tensor, path: Path, dynamic: bool):
    shapes = {"x": {0: _batch_dim()}} if dynamic else None
    program = torch.export.export(_Named(module), (example,), dynamic_shapes=shapes)
    torch.export.save(program, str(path))


def _run_program(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    program = torch.export.load(str(path)).module()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return program(torch.from_numpy(x)).numpy()

    return run


class _Named(nn.Module):
    """The module with its input named ``x`` (torch.export's dynamic shapes are by name)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


_FORMATS = {
    "onnx": (_write_onnx, _run_onnx),
    "torchscript": (_write_torchscript, _run_torchscript),
    "exported-program": (_write_program, _run_program),
}
