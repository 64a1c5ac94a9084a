"""The lesion experiment measures networks it trains and networks given as weights; its errors
are those of the unfolded network with the block deleted by hand (``lesioned_logits``), and a
rerun counts nothing again."""

import json

import pytest
import torch

from reslearn.analysis.lesion import lesioned_logits
from reslearn.cli import main
from reslearn.data import load_dataset
from reslearn.data.device_data import to_device_uint8
from reslearn.data.sampling import sample_indices
from reslearn.experiments import ExperimentSettings, get_experiment, lesion, paper, run_experiment
from reslearn.experiments.report_page import write_experiment_report
from reslearn.train import TrainConfig, train
from reslearn.weights import load_weights


def _weights(data, cache: str, out, model: str, iterations: int):
    """Train ``model`` briefly outside any experiment; its model.safetensors."""
    config = TrainConfig(data=str(data), model=model, iterations=iterations, batch_size=16,
                         cache_dir=cache, precision="fp32", channels_last=False)  # fmt: skip
    return train(config, out, quiet=True).run_dir / "model.safetensors"


def _direct_errors(weights, chosen, count: int, deleted: list) -> list[float]:
    """Each deletion set's error on the experiment's sample, by the unfolded network."""
    trained = load_weights(weights)
    test = load_dataset(chosen.data, cache_dir=chosen.cache_dir).test
    chosen = sample_indices(len(test.labels), count)
    x = trained.normalizer(to_device_uint8(test.images[chosen], "cpu"))
    labels = torch.as_tensor(test.labels[chosen])
    with torch.no_grad():
        return [
            (lesioned_logits(trained.model, x, d).argmax(1) != labels).float().mean().item()
            for d in deleted
        ]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_data):
    """ResNet-20 trained here, plain-20 given, on 20 test images: (settings, folder, results,
    the given weights)."""
    cache = str(tmp_path_factory.getbasetemp() / "experiment-cache")
    given = _weights(tiny_data, cache, tmp_path_factory.mktemp("given"), "plain20", 3)
    chosen = ExperimentSettings(data=str(tiny_data), iterations=2, batch_size=16,
                                cache_dir=cache, precision="fp32",
                                models=["resnet20", "plain20"],
                                weights={"plain20": str(given)}, max_images=20)  # fmt: skip
    out = tmp_path_factory.mktemp("lesion") / "out"
    results = run_experiment(get_experiment("lesion"), chosen, out, quiet=True,
                             draw=write_experiment_report)  # fmt: skip
    return chosen, out, results, given


@pytest.mark.trains
def test_lesion_of_trained_and_given_networks_and_a_rerun(experiment, monkeypatch, capsys):
    chosen, out, results, given = experiment
    assert [r["name"] for r in results["runs"]] == ["resnet20-s0"]  # plain20 was given
    measured = {m["model"]: m for m in results["lesions"]}
    resnet, plain = measured["resnet20"], measured["plain20"]
    assert [b["label"] for b in resnet["blocks"]] == [f"{s}.{p}" for s in (1, 2, 3)
                                                       for p in (1, 2, 3)]  # fmt: skip
    assert [b["label"] for b in resnet["blocks"] if b["downsampling"]] == ["2.1", "3.1"]
    assert resnet["deletable"] == 9 and plain["deletable"] == 7
    assert [b["label"] for b in plain["blocks"] if not b["deletable"]] == ["2.1", "3.1"]
    assert [p["k"] for p in resnet["k_curve"]] == [1, 2, 3, 4]
    assert [p["k"] for p in plain["k_curve"]] == [1, 2, 3]
    assert all(len(p["errors"]) == lesion.DRAWS for p in resnet["k_curve"])
    assert plain["images"] == 20 and plain["chance_error"] == pytest.approx(2 / 3)

    deletable = [j for j, b in enumerate(plain["blocks"]) if b["deletable"]]
    direct = _direct_errors(given, chosen, 20, [set(), *({j} for j in deletable)])
    assert plain["whole_error"] == pytest.approx(direct[0])
    assert [plain["blocks"][j]["error"] for j in deletable] == pytest.approx(direct[1:])
    k2 = plain["k_curve"][1]
    assert k2["min"] <= k2["mean"] <= k2["max"]

    names = [c["claim"] for c in results["claims"]]
    assert any("ResNet-20 leaves its error almost unchanged" in n for n in names)
    assert any("plain-20 sends it toward chance" in n for n in names)
    assert "Deleting one block hurts ResNet-20 less than plain-20" in names
    assert results["paper"]["plain"].endswith(paper.LESION["plain"] + ".")
    for figure in ("lesion-blocks.png", "lesion-k.png"):
        assert (out / figure).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert "BN statistics as trained" in page and "Veit et al. 2016" in page
    kept = json.loads((out / "lesion" / "resnet20.json").read_text())
    assert list(kept["done"]) == ["0"]  # one batch of 20 images

    capsys.readouterr()

    def counted(*_args, **_kwargs):
        raise AssertionError("a rerun counted again")

    monkeypatch.setattr(lesion, "count_errors", counted)
    again = run_experiment(get_experiment("lesion"), chosen, out, quiet=True)
    assert again["lesions"] == results["lesions"]
    assert "0 of 1 batches" in capsys.readouterr().err


@pytest.mark.trains
def test_the_page_renders_in_headless_chromium(experiment, chromium):
    _, out, results, _ = experiment
    chromium.get((out / "report.html").resolve().as_uri())
    widths = chromium.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert len(widths) == 2 and min(widths) > 100  # both figures decoded
    rows = chromium.execute_script(
        "return Array.from(document.querySelectorAll('tr')).map("
        "r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )
    assert any(paper.LESION["plain"] in row for row in rows)  # the published beside ours
    whole = next(m for m in results["lesions"] if m["model"] == "plain20")["whole_error"]
    assert any(row[:3] == ["plain-20", "7 of 9", f"{100 * whole:.2f}"] for row in rows)


@pytest.mark.trains
def test_weights_of_another_network_are_refused(settings, tmp_path, tiny_data):
    given = _weights(tiny_data, settings().cache_dir, tmp_path / "r20", "resnet20", 2)
    with pytest.raises(ValueError, match="holds a resnet20, not a plain20"):
        run_experiment(get_experiment("lesion"),
                       settings(models=["plain20"], weights={"plain20": str(given)}),
                       tmp_path / "out", quiet=True)  # fmt: skip


def test_an_unknown_model_is_one_line(tiny_data, tmp_path, capsys):
    argv = ["reproduce", "lesion", "--data", str(tiny_data), "--models", "resnet21",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown model 'resnet21'" in err
    assert not (tmp_path / "out").exists()
