"""Every file a command writes goes through one rule (reslearn.atomic): missing parent folders
are made, and a write that fails (a read-only place, a full disk) is one line naming the file
the user asked for and the reason, never the temporary file it was being written to. Commands
refuse an output they cannot write before they compute it; eval prints its numbers before the
optional figure, whose failure is a warning."""

import errno
import json
import os
import pickle
import tempfile
from pathlib import Path

import pytest
import torch

from reslearn.atomic import WriteError, atomic_write, check_writable
from reslearn.cli import main
from reslearn.data.normalize import Normalizer
from reslearn.models import create_model
from reslearn.weights import save_weights

#: Part of every temporary name the read-only stand-in reports: no message may show it.
TEMPORARY = "tmpk3x9q"


def read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` (made if missing) and everything under it refuse new files as a
    read-only mount does: creating a temporary file there fails with EROFS, naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    real = tempfile.mkstemp
    folder = folder.resolve()

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):
        if dir is not None and Path(dir).resolve().is_relative_to(folder):
            name = Path(dir) / f"{prefix or ''}{TEMPORARY}{suffix or ''}"
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(name))
        return real(suffix, prefix, dir, text)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def chmod_read_only(folder: Path):
    """``folder`` made unwritable by its permissions; root ignores them, so the test skips."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop writes")
    folder.chmod(0o555)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    assert TEMPORARY not in text and ".tmp" not in text, text
    return lines[0]


# --- the helper --------------------------------------------------------------------------------


def test_missing_parent_folders_are_made(tmp_path):
    target = tmp_path / "missing" / "sub" / "file.bin"
    check_writable(target)  # the check leaves nothing: a command refused later leaves no folder
    assert list(tmp_path.iterdir()) == []
    atomic_write(target, lambda file: file.write(b"data"))
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary left


def _fail_in_write(file):
    file.write(b"half")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["temporary file", "writing", "rename"])
def test_a_failed_write_names_the_target_never_the_temporary(tmp_path, monkeypatch, where):
    target = tmp_path / "out" / "confusion.png"
    write, code = (lambda file: file.write(b"png")), errno.EROFS
    if where == "temporary file":
        read_only(monkeypatch, tmp_path / "out")
    elif where == "writing":
        write, code = _fail_in_write, errno.ENOSPC
    else:
        real_replace, code = os.replace, errno.EACCES

        def replace(source, destination):
            if Path(destination) == target:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(source))
            return real_replace(source, destination)

        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError) as info:
        atomic_write(target, write)
    message = one_line(str(info.value))
    reason = os.strerror(code)
    assert message == f"cannot write {target}: {reason[0].lower()}{reason[1:]}"
    assert info.value.errno == code and isinstance(info.value, OSError)
    assert str(pickle.loads(pickle.dumps(info.value))) == message  # crosses processes intact
    assert not target.exists() and not [p for p in (tmp_path / "out").glob(".*")]


def test_a_file_where_a_folder_should_be_is_said_so(tmp_path):
    (tmp_path / "runs").write_text("a file")
    with pytest.raises(WriteError, match=r"cannot write .*runs/r1/m\.pt: .*runs is a file, not"):
        check_writable(tmp_path / "runs" / "r1" / "m.pt")


def test_an_unwritable_folder_by_permissions(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    chmod_read_only(folder)
    try:
        with pytest.raises(WriteError) as info:
            check_writable(folder / "page.html")
    finally:
        folder.chmod(0o755)
    assert one_line(str(info.value)) == f"cannot write {folder / 'page.html'}: permission denied"


# --- the commands ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory, write_image_folder):
    """Weights of three classes in a folder of their own, and a small data folder for them."""
    root = tmp_path_factory.mktemp("writes")
    model = create_model("resnet20", num_classes=3).eval()
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    weights = root / "stored" / "w.safetensors"
    save_weights(weights, model, classes=["a", "b", "c"], normalizer=Normalizer.fit(images),
                 image_size=(32, 32))  # fmt: skip
    data = write_image_folder(root / "data", ["a", "b", "c"], {"train": 4, "test": 3}, size=32)
    return weights, data


@pytest.mark.parametrize("how", ["read-only mount", "permissions"])
def test_eval_on_read_only_storage_prints_its_numbers_then_warns(setup, capsys, how,
                                                                 monkeypatch):  # fmt: skip
    weights, data = setup
    argv = ["eval", str(weights), "--data", str(data), "--json", "--device", "cpu",
            "--precision", "fp32"]  # fmt: skip
    if how == "read-only mount":
        read_only(monkeypatch, weights.parent)
    else:
        chmod_read_only(weights.parent)
    try:
        code = main(argv)
    finally:
        weights.parent.chmod(0o755)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["count"] == 9 and 0 <= result["top1_error"] <= 1
    png = weights.parent / "w-confusion.png"
    assert result["confusion_png"] == str(png) and not png.exists()
    warning = one_line(captured.err)
    assert warning.startswith("reslearn eval: warning: the confusion matrix was not written")
    assert f"cannot write {png}" in warning and "--out" in warning


def test_explore_refuses_an_unwritable_page_before_computing_it(setup, capsys, monkeypatch):
    import reslearn.explore

    weights, data = setup
    computed = []
    monkeypatch.setattr(reslearn.explore, "explore_page", lambda *a, **k: computed.append(a))
    out = weights.parent / "page.html"
    read_only(monkeypatch, weights.parent)
    image = next((data / "test" / "a").iterdir())
    assert main(["explore", str(weights), str(image), "-o", str(out)]) == 2
    message = one_line(capsys.readouterr().err)
    assert message == f"reslearn explore: error: cannot write {out}: read-only file system"
    assert computed == [] and not out.exists()


@pytest.mark.parametrize(
    "argv,target",
    [
        (["convert", "akamaster", "resnet20-none.th", "-o", "{ro}/r20.safetensors"],
         "{ro}/r20.safetensors"),
        (["export", "{weights}", "-o", "{ro}/sub/m.pt"], "{ro}/sub/m.pt"),
        (["cam", "{weights}", "{image}", "-o", "{ro}/cams"], "{ro}/cams/predictions.json"),
    ],
    ids=["convert", "export", "cam"],
)  # fmt: skip
def test_commands_refuse_an_unwritable_output_first(setup, tmp_path, capsys, monkeypatch, argv,
                                                    target):  # fmt: skip
    weights, data = setup
    ro = tmp_path / "ro"
    values = {"ro": ro, "weights": weights, "image": next((data / "test" / "b").iterdir())}
    read_only(monkeypatch, ro)
    assert main([word.format(**values) for word in argv]) == 2
    message = one_line(capsys.readouterr().err)
    assert message.endswith(f"error: cannot write {target.format(ro=ro)}: read-only file system")


@pytest.mark.trains
def test_train_into_a_read_only_folder_names_the_folder_in_one_line(setup, tmp_path, capsys,
                                                                    monkeypatch):  # fmt: skip
    _, data = setup
    ro = tmp_path / "ro"
    read_only(monkeypatch, ro)
    argv = ["train", "--data", str(data), "--iterations", "2", "--batch-size", "4",
            "--precision", "fp32", "--device", "cpu", "--out", str(ro / "run"),
            "--quiet"]  # fmt: skip
    assert main(argv) == 2
    message = one_line(capsys.readouterr().err)
    assert f"cannot write {ro / 'run'}" in message and "read-only file system" in message


def test_a_download_into_a_read_only_cache_names_the_file_and_the_fix(tmp_path, monkeypatch):
    import io
    import urllib.request

    from reslearn.errors import UserError
    from reslearn.hub.akamaster import FILES, fetch

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"weights"))
    read_only(monkeypatch, tmp_path / "weights")
    with pytest.raises(UserError) as info:
        fetch("resnet20", tmp_path / "weights")
    message = one_line(str(info.value))
    target = tmp_path / "weights" / FILES["resnet20"]
    assert f"(cannot write {target}: read-only file system)" in message
    assert "set RESLEARN_CACHE to a writable folder" in message
