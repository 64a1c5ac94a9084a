"""Checkpoints: atomic writes, safe loading, fallback to the previous one."""

import pytest
import torch

from reslearn.train.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)


def test_keeps_the_newest_two(tmp_path):
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, {"step": step, "w": torch.ones(2) * step})
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step-0000020.pt", "step-0000030.pt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left
    path, state = load_latest_checkpoint(tmp_path)
    assert state["step"] == 30 and torch.equal(state["w"], torch.full((2,), 30.0))


def test_truncated_newest_falls_back_to_the_previous(tmp_path):
    save_checkpoint(tmp_path, {"step": 1, "w": torch.zeros(1000)})
    newest = save_checkpoint(tmp_path, {"step": 2, "w": torch.zeros(1000)})
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(newest)
    with pytest.warns(UserWarning, match="falling back"):
        path, state = load_latest_checkpoint(tmp_path)
    assert state["step"] == 1


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unsafe code ran",))

    path = tmp_path / "step-0000005.pt"
    torch.save({"format": "reslearn-checkpoint/1", "step": 5, "x": Evil()}, path)
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(path)


def test_foreign_file_and_empty_folder(tmp_path):
    other = tmp_path / "step-0000001.pt"
    torch.save({"weights": torch.ones(1)}, other)
    with pytest.raises(ValueError, match="not a reslearn training checkpoint"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_latest_checkpoint(tmp_path / "missing")
