"""Safe image decoding: files to uint8 arrays, in several processes, broken files named.

Every file is fully decoded (a truncated JPEG raises instead of coming back half grey), turned
upright by its EXIF orientation (a phone photo taken sideways is stored sideways with a tag that
says so), grey modes stay grey, everything else becomes RGB with transparency composited on
white, and with a ``size`` each image has its shorter side resized to it (bilinear,
antialiased) and is centre cropped to a square.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

EXIF_ORIENTATION = 0x0112  # the EXIF tag; 1 is upright, 2-8 are mirrorings and rotations
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class BadImageError(ValueError):
    """An image file that cannot be decoded (empty, truncated, or not an image)."""


class SizesDiffer(Exception):
    """Raised by ``decode_images`` without a size once two images differ in size."""

    def __init__(self, sizes: set[tuple[int, int]]) -> None:
        super().__init__(f"images differ in size: {sorted(sizes)}")
        self.sizes = sizes


@dataclass
class Decoded:
    """The readable files of one group: their images (N, H, W, C) and their indices."""

    images: np.ndarray
    kept: np.ndarray  # int64 indices into the group's file list


def decode_images(
    groups: dict[str, list[str]],
    size: int | None,
    *,
    skip_bad: bool,
    workers: int,
    progress: bool,
) -> tuple[dict[str, Decoded], list[str], set[tuple[int, int]]]:
    """Decode named groups of files into arrays sharing one channel count.

    Returns the arrays by group, the skipped files, and the (H, W) sizes the files had before
    any resizing. Grey images keep one channel unless some image in any group is colour. Without
    ``size`` all images must share a size, else ``SizesDiffer``. A bad file raises
    ``BadImageError`` unless ``skip_bad``. ``workers`` > 1 decodes in that many processes.
    """
    total = sum(len(files) for files in groups.values())
    per_chunk = max(64, min(512, math.ceil(total / max(workers, 1) / 4)))
    chunks = {
        name: [files[i : i + per_chunk] for i in range(0, len(files), per_chunk)]
        for name, files in groups.items()
    }
    workers = min(workers, sum(len(c) for c in chunks.values()))
    pool = _pool(workers) if workers > 1 else None
    collected, skipped, sizes = {}, [], set()
    try:
        futures = _submit(pool, chunks, size) if pool is not None else None
        for name in groups:
            results = (
                (future.result() for future in futures[name])
                if futures is not None
                else (_decode_chunk(chunk, size) for chunk in chunks[name])
            )
            bar = tqdm(total=len(groups[name]), desc=f"decoding {name}", unit="img",
                       file=sys.stderr, disable=not progress)  # fmt: skip
            with bar:
                collected[name] = _gather(
                    chunks[name], results, size, skip_bad, bar, skipped, sizes
                )
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    colour = any(part.shape[3] == 3 for parts, _ in collected.values() for part in parts)
    height, width = (size, size) if size is not None else next(iter(sizes), (0, 0))
    decoded = {}
    for name, (parts, kept) in collected.items():
        if colour:  # grey images join colour ones as R = G = B, as PIL's convert("RGB") does
            parts = [np.repeat(p, 3, axis=3) if p.shape[3] == 1 else p for p in parts]
        empty = np.zeros((0, height, width, 3 if colour else 1), np.uint8)
        images = np.ascontiguousarray(np.concatenate(parts)) if parts else empty
        decoded[name] = Decoded(images, kept)
    return decoded, skipped, sizes


def _gather(chunks, results, size, skip_bad, bar, skipped: list, sizes: set):
    """(image parts, indices of the readable files) of one group, from its chunks in order."""
    parts, kept, offset = [], [], 0
    for chunk, result in zip(chunks, results):
        for index, reason in result.bad:
            if not skip_bad:
                raise BadImageError(
                    f"cannot read image '{chunk[index]}' ({reason}); pass --skip-bad-images to "
                    "skip unreadable files"
                )
            skipped.append(chunk[index])
        sizes |= result.sizes
        if size is None and len(sizes) > 1:
            raise SizesDiffer(sizes)
        if result.images is not None:
            parts.append(result.images)
        bad = {index for index, _ in result.bad}
        kept += [offset + i for i in range(len(chunk)) if i not in bad]
        offset += len(chunk)
        bar.update(len(chunk))
    return parts, np.asarray(kept, dtype=np.int64)


def _pool(workers: int) -> ProcessPoolExecutor:
    # fork starts a worker in milliseconds; spawn would import torch again in each one
    method = "fork" if sys.platform.startswith("linux") else None
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))


def _submit(pool: ProcessPoolExecutor, chunks: dict[str, list[list[str]]], size: int | None):
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork in a threaded parent; the workers run only PIL and NumPy
        warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)
        return {
            name: [pool.submit(_decode_chunk, chunk, size) for chunk in group]
            for name, group in chunks.items()
        }


@dataclass
class _Chunk:
    images: np.ndarray | None  # (n, H, W, C) of the readable files; None if none or sizes differ
    bad: list[tuple[int, str]]  # (index in the chunk, why it could not be read)
    sizes: set[tuple[int, int]]  # every (H, W) the files had before resizing


def _decode_chunk(paths: list[str], size: int | None) -> _Chunk:
    """Decode a list of files (runs in a worker process)."""
    decoded, bad, sizes = [], [], set()
    for index, path in enumerate(paths):
        try:
            array, native = _decode(path, size)
        except Exception as error:  # PIL raises many types for broken files; all mean "bad"
            bad.append((index, " ".join(f"{type(error).__name__}: {error}".split())))
            continue
        decoded.append(array)
        sizes.add(native)
    if not decoded or len({a.shape[:2] for a in decoded}) > 1:
        return _Chunk(None, bad, sizes)
    if any(a.ndim == 3 for a in decoded):
        decoded = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2) for a in decoded]
    images = np.stack(decoded)
    return _Chunk(images if images.ndim == 4 else images[..., None], bad, sizes)


def decode_file(path: str | BinaryIO, size: int | None = None) -> np.ndarray:
    """One image (a path or an open binary file) as (H, W) grey or (H, W, 3) RGB uint8, made
    size x size when size is given."""
    return _decode(path, size)[0]


def _decode(path: str | BinaryIO, size: int | None) -> tuple[np.ndarray, tuple[int, int]]:
    with Image.open(path) as img:
        native = (img.height, img.width)
        if orientation(img) >= 5:  # a quarter turn: the sides as displayed are swapped
            native = native[::-1]
        if size is not None and img.format == "JPEG":
            img.draft(img.mode, (size, size))  # let libjpeg shrink large images while decoding
        img.load()  # decodes fully: a truncated file raises here instead of reading as grey
        img = _grey_or_rgb(upright(img))
    return np.asarray(fit(img, size) if size is not None else img), native


def upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation tag says (the image itself when it has none)."""
    if orientation(img) == 1:
        return img  # no copy for the usual case
    return ImageOps.exif_transpose(img)


def orientation(img: Image.Image) -> int:
    """The EXIF orientation of an opened image: 1 (upright) when absent or invalid."""
    value = img.getexif().get(EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _grey_or_rgb(img: Image.Image) -> Image.Image:
    """Mode L for grey modes, RGB for the rest; transparency is composited on white."""
    mode = img.mode
    if mode in ("RGB", "L") and "transparency" not in img.info:
        return img
    if mode in ("LA", "La"):
        return _on_white(img.convert("LA"), "L")
    if mode in ("1", "L"):
        return img.convert("L")
    if mode in GREY_MODES:  # 16- and 32-bit integer or float grey
        pixels = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and pixels.max(initial=0) > 255):
            pixels = pixels / 257  # 16-bit grey: 65535 -> 255
        return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    if mode in ("RGBA", "RGBa", "PA") or "transparency" in img.info:
        return _on_white(img.convert("RGBA"), "RGB")
    return img.convert("RGB")


def _on_white(img: Image.Image, mode: str) -> Image.Image:
    background = Image.new(mode, img.size, 255 if mode == "L" else (255, 255, 255))
    background.paste(img.convert(mode), mask=img.getchannel("A"))
    return background


def fit(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size`` (bilinear, antialiased), then the centre size x size crop."""
    width, height = img.size
    if (width, height) == (size, size):
        return img
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new != (width, height):
        img = img.resize(new, Image.Resampling.BILINEAR)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return img.crop((left, top, left + size, top + size))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Arrays (N, H, W, C) brought to size x size the way ``fit`` brings images."""
    n, height, width, channels = images.shape
    if (height, width) == (size, size):
        return images
    out = np.empty((n, size, size, channels), np.uint8)
    for i, image in enumerate(images):
        resized = fit(Image.fromarray(image[..., 0] if channels == 1 else image), size)
        out[i] = np.asarray(resized).reshape(size, size, channels)
    return out
