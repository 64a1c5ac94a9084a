"""reslearn export: each format reproduces PyTorch on real images (checked before the file is
put in place), the normalisation can travel inside the graph, and bad requests get one line."""

import json
import warnings

import numpy as np
import pytest
import torch

from reslearn.choices import EXPORT_SUFFIXES
from reslearn.cli import main
from reslearn.data.normalize import Normalizer
from reslearn.export import export
from reslearn.models import create_model
from reslearn.weights import load_weights, save_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A small trained-looking network (random weights, real BN statistics) and its file."""
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=3)
    model.train()
    with torch.no_grad():  # give BN running statistics that are not the identity
        for _ in range(3):
            model(torch.randn(16, 3, 32, 32))
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    save_weights(path, model, classes=["a", "b", "c"], normalizer=Normalizer.fit(images),
                 image_size=(32, 32))  # fmt: skip
    return path


def pixels(n=6):
    return np.random.default_rng(1).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _network_file(directory, name, **options):
    """``name`` with random weights and real BN statistics, saved (the exporter's input)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, **options)
    model.train()
    with torch.no_grad():  # give BN running statistics that are not the identity
        for _ in range(2):
            model(torch.randn(8, 3, 32, 32))
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    path = directory / f"{name}.safetensors"
    save_weights(path, model, classes=["a", "b", "c"], normalizer=Normalizer.fit(images),
                 image_size=(32, 32))  # fmt: skip
    return path


def _reload(path, fmt):
    """The exported file, loaded by its own runtime (not by reslearn's check)."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x.numpy()})[0]
    if fmt == "torchscript":
        with warnings.catch_warnings():  # torch 2.14 deprecates TorchScript; it still loads
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path))
    else:
        module = torch.export.load(path).module()
    return lambda x: module(x).detach().numpy()


NETWORKS = {
    "basic": ("resnet20", {}),
    "bottleneck, max-pool stem": ("resnet50", {}),
    "blurpool": ("resnet20", {"antialias": True}),
    "flatten head": ("resnet20", {"pool": "flatten", "map_size": 8}),
}


CASES = [("basic", False), ("basic", True)] + [
    pytest.param(network, True, marks=pytest.mark.slow) for network in list(NETWORKS)[1:]
]  # each other network in a batch of 3; the full suite runs them (about 30 s)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "exported-program"])
@pytest.mark.parametrize("network,dynamic", CASES)
def test_every_format_reloaded_reproduces_pytorch(tmp_path, fmt, dynamic, network):
    name, options = NETWORKS[network]
    trained = load_weights(_network_file(tmp_path, name, **options))
    out = tmp_path / f"m{EXPORT_SUFFIXES[fmt]}"
    report = export(trained, out, format=fmt, images=pixels(), dynamic_batch=dynamic)
    assert out.is_file() and report.images == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    fresh = np.random.default_rng(7).integers(0, 256, (3 if dynamic else 1, 32, 32, 3), np.uint8)
    x = trained.prepare(fresh).contiguous()  # other images than the exporter's check used
    with torch.no_grad():
        expected = trained.model(x).numpy()
    got = _reload(out, fmt)(x)
    assert got.shape == expected.shape == (len(fresh), 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * max(1, np.abs(expected).max()))


def test_with_preprocessing_onnx_takes_uint8_images(weights, tmp_path):
    import onnxruntime

    trained = load_weights(weights)
    out = tmp_path / "m.onnx"
    images = pixels(5)
    export(trained, out, format="onnx", images=images, dynamic_batch=True,
           with_preprocessing=True)  # fmt: skip
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    batch = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    (logits,) = session.run(None, {session.get_inputs()[0].name: batch})
    x = trained.normalizer(torch.from_numpy(batch).cpu())
    with torch.no_grad():
        expected = trained.model(x).numpy()
    assert session.get_inputs()[0].type == "tensor(uint8)"
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


def test_a_wrong_export_is_not_written(weights, tmp_path, monkeypatch):
    from reslearn import export as module
    from reslearn.errors import UserError

    writer, _ = module._FORMATS["torchscript"]

    def wrong(path):
        return lambda x: np.zeros((len(x), 3), np.float32)

    monkeypatch.setitem(module._FORMATS, "torchscript", (writer, wrong))
    out = tmp_path / "m.pt"
    with pytest.raises(UserError, match="differs from PyTorch by .* nothing was written"):
        export(load_weights(weights), out, format="torchscript", images=pixels())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("relative_error,written", [(1e-6, True), (1e-3, False)])
def test_the_check_scales_with_the_logits(weights, tmp_path, monkeypatch, relative_error, written):
    """A barely trained network's logits reach the hundreds; fp32 rounding there exceeds an
    absolute 1e-4 while a real error of 0.1% is still refused."""
    from reslearn import export as module
    from reslearn.errors import UserError

    trained = load_weights(weights)
    with torch.no_grad():
        trained.model.fc.weight.mul_(1e4)
    writer, runner = module._FORMATS["torchscript"]

    def off_by(path):
        run = runner(path)
        return lambda x: (run(x) * (1 + relative_error)).astype(np.float32)

    monkeypatch.setitem(module._FORMATS, "torchscript", (writer, off_by))
    out = tmp_path / "m.pt"
    if written:
        report = export(trained, out, format="torchscript", images=pixels())
        assert report.max_abs_difference > 1e-4 and out.is_file()
    else:
        with pytest.raises(UserError, match="differs from PyTorch"):
            export(trained, out, format="torchscript", images=pixels())
        assert not out.exists()


def test_the_command_line(weights, tmp_path, capsys, write_image_folder):
    data = write_image_folder(tmp_path / "d", ["a", "b", "c"], {"train": 2, "test": 3}, size=32)
    out = tmp_path / "m.pt2"
    args = ["export", str(weights), "-o", str(out), "--data", str(data), "--images", "4"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "exported-program" in printed and "on 4 test images of" in printed
    assert main(args) == 2  # exists
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--dynamic-batch"]) == 0
    capsys.readouterr()
    assert main(["export", str(weights), "-o", str(tmp_path / "m.bin")]) == 2
    assert "give --format" in capsys.readouterr().err
    other = write_image_folder(tmp_path / "o", ["x", "y"], {"train": 2, "test": 2}, size=32)
    assert main(["export", str(weights), "-o", str(tmp_path / "n.pt2"), "--data", str(other)]) == 2
    assert "does not match the network's classes" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"settings": {}}))
    assert main(["export", str(run), "-o", str(tmp_path / "r.onnx")]) == 2
    assert "has no model.safetensors" in capsys.readouterr().err


def test_without_onnx_the_install_is_named(weights, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name in ("onnx", "onnxscript"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    from reslearn.errors import UserError

    with pytest.raises(UserError, match=r"pip install 'reslearn\[export\]'"):
        export(load_weights(weights), tmp_path / "m.onnx", format="onnx", images=pixels(1))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_named_not_blamed_on_the_export(weights, tmp_path, capsys, bad):
    trained = load_weights(weights)
    names = [n for n, t in trained.model.state_dict().items() if t.is_floating_point()]
    with torch.no_grad():
        for name in (names[3], names[-1]):
            trained.model.state_dict()[name].view(-1)[0] = bad
    path = tmp_path / "diverged.safetensors"
    save_weights(path, trained.model, classes=trained.classes, normalizer=trained.normalizer,
                 image_size=trained.image_size)  # fmt: skip
    out = tmp_path / "m.pt"
    assert main(["export", str(path), "-o", str(out), "--images", "2"]) == 2
    err = capsys.readouterr().err
    assert f"the weights hold non-finite values (2 tensors, e.g. {names[3]})" in err
    assert "differs from PyTorch" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_an_output_in_missing_folders_is_written_there(weights, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(weights), "-o", "missing/sub/m.pt", "--images", "2"]) == 0
    assert (tmp_path / "missing" / "sub" / "m.pt").stat().st_size > 0
    assert "missing/sub/m.pt: torchscript" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "missing" / "sub").iterdir()] == ["m.pt"]
