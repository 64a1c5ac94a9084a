"""``reslearn train --tensorboard``: the scalars of metrics.jsonl as TensorBoard events (training
loss and error, every split's error and loss, the learning rate, images/s), and the finished
run's curves and confusion matrix as images. TensorBoard is an optional extra
(``pip install 'reslearn[tensorboard]'``); without it the flag is refused before training.

A resumed run continues the same event stream: its writer starts with ``purge_step`` just after
the step it resumes from, so TensorBoard drops the events the earlier session wrote after its
last checkpoint (metrics.jsonl is truncated to the same point) instead of showing them twice.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from reslearn.atomic import WriteError, check_writable
from reslearn.errors import UserError
from reslearn.rundir import CONFUSION, CURVES

#: metrics.jsonl's keys and their TensorBoard tags (a split's keys are added as they come).
_TAGS = {
    "train_loss": "train/loss",
    "train_error": "train/error",
    "lr": "train/lr",
    "images_per_s": "train/images_per_s",
}
#: The finished run's figures (the report's files) added as images, when drawn.
FIGURES = (CURVES, CONFUSION)


def check_available() -> None:
    """Refuse ``--tensorboard`` at once, with the install line, where tensorboard is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError(
            "--tensorboard needs the tensorboard package: pip install 'reslearn[tensorboard]'"
        )


def check(folder: str | Path | bool) -> None:
    """Refuse ``--tensorboard`` before any work: without the package, or with a folder given
    (True: RUN/tensorboard, checked with the run folder) that is a file or cannot be written."""
    check_available()
    if folder is not True:
        check_folder(folder)


def check_folder(folder: str | Path) -> None:
    """Refuse, before any work and in one line naming it, a TensorBoard folder that is a file
    or where no file can be written; nothing is made (the writer makes the folder later)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"TensorBoard folder {folder} is a file; give a folder")
    try:
        check_writable(folder / "events.out.tfevents")
    except WriteError as error:
        raise UserError(f"cannot write the TensorBoard folder {folder}: {error.strerror}") from None


def tag(key: str) -> str | None:
    """The TensorBoard tag of a metrics.jsonl key (``test_error`` -> ``test/error``), or None
    for keys that are not scalars of the curves (``step``, ``epoch``, ``event``)."""
    if key in _TAGS:
        return _TAGS[key]
    split, _, what = key.partition("_")
    if what in ("error", "top5_error", "loss"):
        return f"{split}/{what}"
    return None


class TensorBoardLog:
    """Rank 0's TensorBoard writer for one session of a run, from step ``start``."""

    def __init__(self, folder: str | Path, start: int = 0) -> None:
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        # the steps logged up to the checkpoint at ``start`` stay; later ones were lost with it
        self._writer = SummaryWriter(str(self.folder), purge_step=start + 1 if start else None)

    def write(self, record: dict[str, Any]) -> None:
        """One metrics record's scalars, at its step."""
        step = record.get("step")
        for key, value in record.items():
            name = tag(key)
            if name is not None and isinstance(value, (int, float)):
                self._writer.add_scalar(name, value, step)

    def add_figures(self, run_dir: Path, step: int) -> None:
        """The run's drawn figures (curves, confusion matrix) as images at its last step."""
        import numpy as np
        from PIL import Image

        for name in FIGURES:
            path = run_dir / name
            if path.is_file():
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                self._writer.add_image(Path(name).stem, pixels, step, dataformats="HWC")
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
