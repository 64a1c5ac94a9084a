"""Starting a run from pretrained weights (``--init``): torchvision's ImageNet weights,
akamaster's CIFAR-10 ResNets (``akamaster:resnet20`` or their ``.th`` file, built with their
option-A layout ``zero_pad="both"``) or a local file (a torchvision ``.pth`` state_dict or a
reslearn ``.safetensors``), loaded into the matching layout, with a new head when the number of
classes differs.

torchvision's bottleneck networks put the stride on the 3x3 conv ("v1.5"); a ``torchvision:``
spec or a ``.pth`` file therefore builds resnet50/101/152 with ``stride_in_1x1=False`` unless
that option is given. A reslearn ``.safetensors`` file carries its own options.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from reslearn.errors import UserError, one_line
from reslearn.hub import weights_path
from reslearn.hub.akamaster import read_akamaster
from reslearn.models import ResNet, model_info

_HEAD = ("fc.weight", "fc.bias")


@dataclass
class InitReport:
    """What ``--init`` loaded."""

    source: str
    tensors: int  # loaded into the network
    head: str  # "loaded" or "replaced (1000 -> 10 classes)"


def init_model_options(spec: str, model: str, options: dict) -> dict:
    """The model options an ``--init`` source needs: v1.5 bottlenecks for torchvision files."""
    out = dict(options)
    spec = _local(spec)
    if _akamaster(spec):  # their option-A shortcut pads zeros on both sides
        out.setdefault("zero_pad", "both")
        return out
    path_like = not spec.startswith("torchvision:")
    if path_like and Path(spec).suffix == ".safetensors":
        saved = _safetensors(spec, lambda: _saved_options(spec))
        for key in ("shortcut", "stride_in_1x1", "antialias"):
            if key in saved and key not in out:
                out[key] = saved[key]
        return out
    if model_info(model).block == "bottleneck" and "stride_in_1x1" not in out:
        out["stride_in_1x1"] = False  # torchvision's layout
    return out


def _saved_options(spec: str) -> dict:
    if not Path(spec).is_file():
        raise UserError(f"--init {spec}: no such file")
    with safe_open(spec, framework="pt") as file:
        saved = json.loads((file.metadata() or {}).get("model_options", "{}"))
    if not isinstance(saved, dict):
        raise ValueError(f"model_options is {type(saved).__name__}, not a mapping")
    return saved


def _safetensors(spec: str, read):
    """``read()``, with any failure to parse the file (safetensors raises its own
    SafetensorError, not an OSError) turned into one line naming the file."""
    try:
        return read()
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 -- every parser failure means a damaged file
        raise UserError(
            f"--init {spec}: not a readable .safetensors file ({one_line(error)}); it is "
            "truncated or damaged: copy or save the weights again"
        ) from None


def _akamaster(spec: str) -> bool:
    return spec.startswith("akamaster:") or Path(spec).suffix == ".th"


def _local(spec: str) -> str:
    """A shipped network's name (``reslearn:resnet20-cifar10``) as its file."""
    return str(weights_path(spec)) if spec.startswith("reslearn:") else spec


def _read(spec: str) -> dict[str, torch.Tensor]:
    spec = _local(spec)
    if _akamaster(spec):
        return read_akamaster(weights_path(spec)).model.state_dict()
    if spec.startswith("torchvision:"):
        name = spec.split(":", 1)[1]
        try:
            import torchvision

            weights = torchvision.models.get_model_weights(name).DEFAULT
        except (ValueError, AttributeError, KeyError):
            raise ValueError(f"--init {spec}: torchvision has no weights named {name!r}") from None
        try:
            return weights.get_state_dict(progress=True)
        except Exception as error:  # offline, or a broken download
            raise ValueError(
                f"--init {spec}: could not download torchvision's weights ({error}); save them "
                "on a machine that is online and pass the .pth file instead"
            ) from None
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--init {spec}: no such file")
    if path.suffix == ".safetensors":
        tensors = _safetensors(spec, lambda: load_file(path))
        # reslearn files also hold the normalisation statistics ("__normalizer__.mean", ...)
        return {k: v for k, v in tensors.items() if not k.startswith("__")}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"--init {spec}: not a readable weights file ({error})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--init {spec}: expected a state_dict of tensors")
    return state


def load_initial_weights(spec: str, model: ResNet, model_name: str) -> InitReport:
    """Copy the weights of ``spec`` into ``model`` (all but a head of another size)."""
    state = {k.removeprefix("module."): v for k, v in _read(spec).items()}
    expected = model.state_dict()
    body = {k for k in expected if k not in _HEAD}
    missing = sorted(body - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in body & set(state) if state[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        parts = [f"--init {spec} does not fit {model_name}: the file holds {len(state)} tensors"]
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:2])})")
        if unexpected:
            parts.append(
                f"{len(unexpected)} not in {model_name} (e.g. {', '.join(unexpected[:2])})"
            )
        for key in reshaped[:2]:
            parts.append(
                f"{key} is {tuple(state[key].shape)} in the file, {tuple(expected[key].shape)} "
                "in the network"
            )
        raise ValueError("; ".join(parts))
    head_fits = all(k in state and state[k].shape == expected[k].shape for k in _HEAD)
    load = {k: v for k, v in state.items() if head_fits or k not in _HEAD}
    model.load_state_dict(load, strict=False)
    if head_fits:
        head = "loaded"
    else:
        classes = state["fc.weight"].shape[0] if "fc.weight" in state else "no"
        head = f"replaced ({classes} -> {model.num_classes} classes)"
    return InitReport(source=spec, tensors=len(load), head=head)


def backbone_and_head(model: ResNet) -> tuple[list, list]:
    """The network's parameters split into (everything but the classifier, the classifier)."""
    head_ids = {id(p) for p in model.fc.parameters()}
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    return backbone, list(model.fc.parameters())
