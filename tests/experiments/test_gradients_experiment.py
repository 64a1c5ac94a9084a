"""The gradients experiment measures branch ratios, layer gradients and the path study on
networks it trains or is given; its numbers are those of direct calls on the same images, a
rerun measures nothing again, and a study without a ResNet is refused in one line."""

import json
import math

import pytest
import torch

from reslearn.analysis.gradient_paths import PathGradients, branch_ratios
from reslearn.cli import main
from reslearn.data import load_dataset
from reslearn.data.device_data import to_device_uint8
from reslearn.data.sampling import sample_indices
from reslearn.experiments import (
    ExperimentSettings,
    get_experiment,
    gradients,
    paper,
    run_experiment,
)
from reslearn.experiments.report_page import write_experiment_report
from reslearn.train import TrainConfig, train
from reslearn.weights import load_weights


def _weights(data, cache: str, out, model: str, iterations: int):
    """Train ``model`` briefly outside any experiment; its model.safetensors."""
    config = TrainConfig(data=str(data), model=model, iterations=iterations, batch_size=16,
                         cache_dir=cache, precision="fp32", channels_last=False)  # fmt: skip
    return train(config, out, quiet=True).run_dir / "model.safetensors"


def _sample(weights, chosen, count: int):
    """The trained network and the experiment's sample: inputs and labels."""
    trained = load_weights(weights)
    test = load_dataset(chosen.data, cache_dir=chosen.cache_dir).test
    chosen = sample_indices(len(test.labels), count)
    x = trained.normalizer(to_device_uint8(test.images[chosen], "cpu"))
    return trained, x, torch.as_tensor(test.labels[chosen])


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_data):
    """Plain-20 trained here, ResNet-20 given, on 12 test images: (settings, folder, results,
    the given weights)."""
    cache = str(tmp_path_factory.getbasetemp() / "experiment-cache")
    given = _weights(tiny_data, cache, tmp_path_factory.mktemp("given"), "resnet20", 2)
    chosen = ExperimentSettings(data=str(tiny_data), iterations=2, batch_size=16,
                                cache_dir=cache, precision="fp32",
                                models=["plain20", "resnet20"],
                                weights={"resnet20": str(given)}, max_images=12)  # fmt: skip
    out = tmp_path_factory.mktemp("gradients") / "out"
    results = run_experiment(get_experiment("gradients"), chosen, out, quiet=True,
                             draw=write_experiment_report)  # fmt: skip
    return chosen, out, results, given


@pytest.mark.trains
def test_gradients_of_trained_and_given_networks_and_a_rerun(experiment, monkeypatch, capsys):
    chosen, out, results, given = experiment
    assert [r["name"] for r in results["runs"]] == ["plain20-s0"]  # resnet20 was given
    measured = {m["model"]: m for m in results["gradients"]}
    plain, resnet = measured["plain20"], measured["resnet20"]
    assert plain["ratios"] is None and plain["paths"] is None  # the study's: the ResNet's
    assert len(plain["norms"]["init"]) == len(resnet["norms"]["trained"]) == 10  # stem + 9
    assert [r["index"] for r in resnet["ratios"]["init"]] == list(range(1, 10))
    assert math.isfinite(resnet["ratio_power"])

    trained, x, labels = _sample(given, chosen, 12)
    direct = [r.ratio for r in branch_ratios(trained.model, x)]
    assert [r["ratio"] for r in resnet["ratios"]["trained"]] == pytest.approx(direct, rel=1e-5)
    paths = resnet["paths"]
    assert paths["blocks"] == 9 and [p["k"] for p in paths["by_k"]] == list(range(10))
    assert [p["subsets"] for p in paths["by_k"]][:2] == [1, gradients.PATH_DRAWS]
    study = PathGradients(trained.model, x, labels)
    assert paths["by_k"][0]["magnitude"] == pytest.approx(study.norm(()), rel=1e-5)
    assert paths["by_k"][9]["magnitude"] == pytest.approx(study.norm(range(9)), rel=1e-5)
    assert sum(p["share"] for p in paths["by_k"]) == pytest.approx(1)
    window = paths["window"]
    assert 0 <= window["shortest"] <= window["longest"] <= 9

    names = [c["claim"] for c in results["claims"]]
    assert any("ResNet-20's std(F(x)) / std(x) falls like 1/sqrt(l)" in n for n in names)
    assert any("falls exponentially" in n for n in names)
    for figure in ("gradients-ratios.png", "gradients-norms.png", "gradients-paths.png"):
        assert (out / figure).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert "De and Smith" in page and "paths through 5 to 17 of its 54 blocks" in page
    kept = json.loads((out / "gradients" / "resnet20.json").read_text())
    assert {"ratios_init", "norms_trained", "path_k0", "path_k9"} <= set(kept["done"])

    capsys.readouterr()

    def measured_again(*_args, **_kwargs):
        raise AssertionError("a rerun measured again")

    for name in ("branch_ratios", "layer_gradient_norms", "PathGradients"):
        monkeypatch.setattr(gradients, name, measured_again)
    again = run_experiment(get_experiment("gradients"), chosen, out, quiet=True)
    assert again["gradients"] == results["gradients"]
    err = capsys.readouterr().err
    assert "resnet20: 0 of 14 measurements" in err and "plain20: 0 of 2 measurements" in err


@pytest.mark.trains
def test_the_page_renders_in_headless_chromium(experiment, chromium):
    _, out, results, _ = experiment
    chromium.get((out / "report.html").resolve().as_uri())
    widths = chromium.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert len(widths) == 3 and min(widths) > 100  # every figure decoded
    rows = chromium.execute_script(
        "return Array.from(document.querySelectorAll('tr')).map("
        "r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )
    assert any(paper.GRADIENTS["path_window_text"] in row for row in rows)
    assert [str(k) for k in range(10)] == [row[0] for row in rows if len(row) == 5][1:]


def test_a_study_without_a_resnet_is_one_line(tiny_data, tmp_path, capsys):
    argv = ["reproduce", "gradients", "--data", str(tiny_data), "--models", "plain20",
            "plain56", "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--models plain20 plain56: the path study needs a network with residual" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_model_is_one_line(tiny_data, tmp_path, capsys):
    argv = ["reproduce", "gradients", "--data", str(tiny_data), "--models", "resnet20",
            "resnett56", "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown model 'resnett56'" in err
