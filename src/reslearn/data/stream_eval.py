"""The held-out splits of a streamed image folder: the paper's test views (the centre crop,
10 crops, whole images at several sizes) through DataLoader workers, batch by batch, ready for
``reslearn.evaluate.view_scores``; and the training crops' normaliser, fitted on centre views.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from reslearn.choices import VIEWS
from reslearn.data.imagenet_views import (
    MULTISCALE_SIDES,
    center_view,
    multiscale_views,
    ten_crop_views,
)
from reslearn.data.normalize import Normalizer
from reslearn.data.sampling import sample_indices
from reslearn.data.stream import ImageFiles, collate_lists, make_loader, report_bad


class TestViews(ImageFiles):
    """Test samples: the ``view`` of each image as uint8 ("center": (3, c, c); "10crop":
    (10, 3, c, c); "multiscale": a list of whole images at each shorter side)."""

    def __init__(
        self,
        files: Sequence[str],
        labels: np.ndarray,
        view: str,
        *,
        crop: int = 224,
        sides: Sequence[int] = MULTISCALE_SIDES,
    ) -> None:
        if view not in VIEWS:
            raise ValueError(f"views must be among {', '.join(VIEWS)}; got {view!r}")
        super().__init__(files, labels)
        self.view, self.crop, self.sides = view, crop, tuple(sides)
        self.shorter = round(crop * 256 / 224)  # the paper's 256 for a 224 crop

    def __getitem__(self, index: int):
        image, label, bad = self.read(index)
        if self.view == "center":
            views = center_view(image, shorter=self.shorter, crop=self.crop).contiguous()
        elif self.view == "10crop":
            views = ten_crop_views(image, shorter=self.shorter, crop=self.crop)
        else:
            views = multiscale_views(image, self.sides)
        return views, label, bad


class StreamEval:
    """A held-out split of an image folder, served through one test ``view`` (data only:
    ``reslearn.evaluate.view_scores`` runs the model on its ``batches``)."""

    def __init__(
        self,
        files: Sequence[str],
        labels: np.ndarray,
        normalizer: Normalizer,
        *,
        view: str = "center",
        crop: int = 224,
        sides: Sequence[int] = MULTISCALE_SIDES,
        workers: int = 0,
        batch_size: int = 64,
        skip_bad: bool = False,
    ) -> None:
        self.dataset = TestViews(files, labels, view, crop=crop, sides=sides)
        self.labels = torch.from_numpy(self.dataset.labels)
        self.normalizer, self.workers, self.batch_size = normalizer, workers, batch_size
        self.skip_bad, self.bad_seen = skip_bad, set()

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(
        self, device: torch.device, *, rank: int = 0, world: int = 1, progress: bool = False
    ) -> Iterator[tuple[torch.Tensor | list[torch.Tensor], torch.Tensor]]:
        """The images ``rank::world`` as normalised views on ``device``, batch by batch, with
        their labels (on ``device``): "center" and "10crop" give (B, V, C, crop, crop), V views
        of B images (V = 1 or 10); "multiscale" one image per batch, as a list of (1, C, h, w)
        tensors, one per size. ``reslearn.evaluate.view_scores`` averages their softmax."""
        normalizer = self.normalizer.to(device)
        indices = list(range(rank, len(self.dataset), world))
        multiscale = self.dataset.view == "multiscale"
        loader = make_loader(
            torch.utils.data.Subset(self.dataset, indices),
            self.workers,
            device.type == "cuda",
            batch_size=1 if multiscale else max(1, self.batch_size // self._views_per_image()),
            collate_fn=collate_lists if multiscale else None,
        )
        for views, labels, bad in tqdm(
            loader, desc=f"{self.dataset.view} views", unit="batch", disable=not progress
        ):
            report_bad(bad, self.skip_bad, self.bad_seen)
            labels = torch.as_tensor(labels).to(device)
            if multiscale:  # one image, whole, at several sizes
                yield [_normalise(v[None], normalizer, device) for v in views[0]], labels
            else:
                count = len(labels)
                flat = _normalise(views.reshape(-1, *views.shape[-3:]), normalizer, device)
                yield flat.reshape(count, -1, *flat.shape[1:]), labels

    def _views_per_image(self) -> int:
        return 10 if self.dataset.view == "10crop" else 1


def _normalise(images: torch.Tensor, normalizer: Normalizer, device: torch.device):
    images = images.to(device, non_blocking=True)
    return normalizer.resized(*images.shape[-2:])(images)


def fit_stream_normalizer(
    files: Sequence[str],
    mode: str,
    *,
    crop: int,
    seed: int,
    count: int = 1000,
    workers: int = 0,
) -> Normalizer:
    """The normaliser of the training crops: statistics of the centre views of ``count``
    training images drawn at random (a pure function of the seed)."""
    chosen = sample_indices(len(files), count, seed)
    dataset = TestViews([files[i] for i in chosen], np.zeros(len(chosen)), "center", crop=crop)
    loader = make_loader(dataset, workers, False, batch_size=64)
    images = torch.cat([views for views, _, _ in loader])
    return Normalizer.fit(images, mode)
