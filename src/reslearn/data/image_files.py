"""Image files a user names (predict, cam, explore): decoded as training images are, fitted to
a network's input size and channels."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

from reslearn.data.decode import decode_file


def load_image(path: str | os.PathLike, *, in_channels: int, size: tuple[int, int]) -> np.ndarray:
    """An image file as uint8 (H, W, C) with ``in_channels`` channels at ``size`` (H, W).

    Decoded as training images are (``reslearn.data.decode``): any PIL mode, transparency on
    white, 16-bit grey scaled to 8 bits, the shorter side resized to a square size and the
    centre cropped. Grey becomes R = G = B for a colour network, colour becomes luma for a grey
    one.
    """
    if in_channels not in (1, 3):
        raise ValueError(f"only 1- and 3-channel networks can read image files; got {in_channels}")
    height, width = size
    try:
        pixels = decode_file(os.fspath(path), height if height == width else None)
    except FileNotFoundError:
        raise FileNotFoundError(f"image '{path}' does not exist") from None
    except Exception as error:  # PIL raises many types for broken files; all mean "unreadable"
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise ValueError(f"cannot read image '{path}' ({reason})") from None
    if pixels.shape[:2] != (height, width):  # a non-square training size
        image = Image.fromarray(pixels)
        pixels = np.asarray(ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if in_channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif in_channels == 1 and pixels.shape[2] == 3:
        pixels = np.asarray(Image.fromarray(pixels).convert("L"))[:, :, None]
    return np.ascontiguousarray(pixels)


def load_images(paths, *, in_channels: int, size: tuple[int, int]) -> np.ndarray:
    """Image files as one uint8 (N, H, W, C) batch, each as ``load_image`` makes it."""
    return np.stack([load_image(p, in_channels=in_channels, size=size) for p in paths])
