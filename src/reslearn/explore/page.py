"""The explore page: one self-contained HTML file (inline CSS and JavaScript, every picture a
data URI, all numbers precomputed) that opens from disk with no server and no network."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from string import Template

import numpy as np

from reslearn.explore.compute import ImageView, uses_cam
from reslearn.explore.encode import colormap, encode_view, interpolation_matrices, png_uri
from reslearn.text import display_name, display_names
from reslearn.version import __version__
from reslearn.weights import TrainedModel

_GRAD_CAM_NOTE = (
    "This network has no global average pooling before its classifier, so CAM does not apply; "
    "the map is Grad-CAM at the last stage (the gradient-weighted feature map)."
)


@dataclass
class PageImage:
    """One image on the page: what to call it, its pixels fitted to the networks' input
    (uint8 H, W, C) and, when known, its true class name."""

    name: str
    pixels: np.ndarray
    truth: str | None = None


def _mean_image(trained: TrainedModel) -> np.ndarray:
    """The normaliser's mean as uint8 (H, W, C): what a zero-filled shift uncovers."""
    height, width = trained.image_size
    mean = trained.normalizer.mean.float().cpu().expand(trained.in_channels, height, width)
    return np.round(mean.numpy().transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)


def network_entry(trained: TrainedModel, label: str, views: list[ImageView]) -> dict:
    """What the page needs to know about one network, with its views of every image."""
    first = next(iter(views[0].modes.values()))
    map_size = list(first.maps.shape[1:])
    cam = uses_cam(trained.model)
    return {
        "label": display_name(label),  # a path: any bytes
        "model": display_name(trained.name),
        "method": "CAM" if cam else "Grad-CAM",
        "note": "" if cam else _GRAD_CAM_NOTE,
        "classes": display_names(trained.classes),
        "stages": [
            {"name": name, "stride": stride, "size": list(first.features[name].shape[2:])}
            for name, stride in views[0].strides.items()
        ],
        "map_size": map_size,
        "interpolation": interpolation_matrices(map_size, trained.image_size),
        "mean": png_uri(_mean_image(trained)),
        "views": [encode_view(view) for view in views],
    }


def _asset(name: str) -> str:
    return resources.files("reslearn.explore").joinpath(name).read_text(encoding="utf-8")


def render_page(
    images: list[PageImage], networks: list[dict], *, max_shift: int, command: str
) -> str:
    """The HTML page for ``images`` seen by ``networks`` (``network_entry`` of each)."""
    height, width = images[0].pixels.shape[:2]
    data = {
        "version": __version__,
        "command": display_name(command),
        "max_shift": max_shift,
        "image_size": [height, width],
        "display_scale": max(1, round(192 / max(height, width))),
        "modes": ["circular", "zero"],
        "interpolations": ["nearest", "bilinear", "bicubic"],
        "jet": colormap("jet").tolist(),
        "images": [
            {"name": display_name(i.name), "truth": _shown(i.truth), "png": png_uri(i.pixels)}
            for i in images
        ],
        "networks": networks,
    }
    payload = script_json(data)
    title = " vs ".join(n["label"] for n in networks)
    return Template(_asset("page.html")).substitute(
        title=_escape(f"reslearn explore: {title}"),
        style=_asset("page.css"),
        script=_asset("page.js"),
        data=payload,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: Characters that could end the data's <script> element or open a comment or CDATA section
#: inside it, as JSON escapes: inside a JSON string (the only place JSON text has them) the
#: parsed value is the same character, so every string reaches the page as written.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def script_json(data: object) -> str:
    """``data`` as JSON that is safe inside ``<script type="application/json">``: ASCII only
    (U+2028 and U+2029 escaped too) and without ``<``, ``>`` or ``&``."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return text.translate(_SCRIPT_ESCAPES)


def _shown(name: str | None) -> str | None:
    return None if name is None else display_name(name)
