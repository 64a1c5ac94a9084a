"""The landscape experiment measures networks trained here and given as weights on a seeded
training subset, its loss at the origin is the network's own loss there, a rerun measures
nothing twice, bad settings are one line, and its page renders."""

import json

import pytest
import torch
from torch.nn import functional

from reslearn.data import load_dataset
from reslearn.data.device_data import to_device_uint8
from reslearn.data.sampling import sample_indices
from reslearn.errors import SettingError
from reslearn.experiments import get_experiment, run_experiment
from reslearn.experiments.report_page import write_experiment_report
from reslearn.train import TrainConfig, train
from reslearn.weights import load_weights

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

SUBSET = 20


@pytest.fixture(scope="module")
def measured(tiny_data, tmp_path_factory):
    """plain20 trained by the experiment, resnet20 given as weights: (out, results, settings)."""
    from reslearn.experiments import ExperimentSettings

    root = tmp_path_factory.mktemp("landscape")
    cache = tmp_path_factory.getbasetemp() / "experiment-cache"
    given = train(
        TrainConfig(data=str(tiny_data), model="resnet20", iterations=3, batch_size=16,
                    cache_dir=str(cache)),
        root / "given", quiet=True,
    ).run_dir / "model.safetensors"  # fmt: skip
    settings = ExperimentSettings(
        data=str(tiny_data), iterations=3, batch_size=16, cache_dir=str(cache),
        models=["plain20", "resnet20"], weights={"resnet20": str(given)}, grid=3, subset=SUBSET,
    )  # fmt: skip
    out = root / "out"
    results = run_experiment(get_experiment("landscape"), settings, out, quiet=True,
                             draw=write_experiment_report)  # fmt: skip
    return out, results, settings


def test_the_loss_at_the_origin_is_the_networks_own_on_the_seeded_subset(measured, tiny_data):
    out, results, settings = measured
    assert [r["name"] for r in results["runs"]] == ["plain20-s0"]  # resnet20 was given
    by_name = {m["model"]: m for m in results["landscapes"]}
    for name, weights in (("plain20", out / "runs" / "plain20-s0" / "model.safetensors"),
                          ("resnet20", settings.weights["resnet20"])):  # fmt: skip
        m = by_name[name]
        assert len(m["line"]["loss"]) == 51 and len(m["plane"]["loss"]) == 3
        assert m["subset"] == SUBSET and m["test_images"] == 24
        trained = load_weights(weights)
        train_split = load_dataset(str(tiny_data), cache_dir=settings.cache_dir).train
        chosen = sample_indices(len(train_split.labels), SUBSET)
        x = trained.normalizer(to_device_uint8(train_split.images[chosen], "cpu"))
        with torch.no_grad():
            logits = trained.model.eval()(x)
        loss = float(functional.cross_entropy(logits, torch.as_tensor(train_split.labels[chosen])))
        assert m["line"]["loss"][25] == pytest.approx(loss, rel=1e-4)  # alpha = 0
        assert m["plane"]["loss"][1][1] == pytest.approx(loss, rel=1e-4)
        assert m["line_shape"]["centre_loss"] == pytest.approx(loss, rel=1e-4)
    claims = [c["claim"] for c in results["claims"]]
    assert "ResNet-20's basin is wider than plain-20's" in claims
    for figure in ("landscape-1d.png", "landscape-contours.png", "landscape-3d.png"):
        assert (out / figure).stat().st_size > 1000
    page = (out / "report.html").read_text()
    assert "Li et al." in page and "7.37" in page  # the published Fig. 5 errors beside ours


def test_a_rerun_measures_no_point_twice(measured, capsys):
    out, results, settings = measured
    capsys.readouterr()
    again = run_experiment(get_experiment("landscape"), settings, out, quiet=True)
    err = capsys.readouterr().err
    assert "plain20: 0 of 57 points to measure" in err and "resnet20: 0 of 57 points" in err
    assert again["landscapes"] == results["landscapes"]
    lines = (out / "landscape" / "plain20.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 57 and "key" in json.loads(lines[0])


def test_a_torn_last_point_is_measured_again(measured, tmp_path, capsys):
    import shutil

    out, results, settings = measured
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    points = copy / "landscape" / "plain20.jsonl"
    points.write_bytes(points.read_bytes()[:-7])  # a process killed while writing its last line
    capsys.readouterr()
    again = run_experiment(get_experiment("landscape"), settings, copy, quiet=True)
    assert "plain20: 1 of 57 points to measure" in capsys.readouterr().err
    assert again["landscapes"][0]["plane"] == results["landscapes"][0]["plane"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"grid": 1}, r"^grid 1: the 2-D landscape is N x N points; give an odd N from 3 to 101"),
        ({"grid": 10_000}, r"^grid 10000: .* give an odd N from 3 to 101"),
        ({"grid": 20}, r"^grid 20: .*odd N"),
        ({"subset": 0}, r"^subset 0: give a number of training images"),
        ({"models": ["resnet21"]}, "resnet21"),
        ({"depths": [20]}, "takes --models"),
    ],
)
def test_bad_settings_are_one_line_before_any_training(settings, tmp_path, overrides, message):
    with pytest.raises((SettingError, ValueError), match=message) as error:
        run_experiment(get_experiment("landscape"), settings(**overrides), tmp_path / "x",
                       quiet=True)  # fmt: skip
    assert "\n" not in str(error.value)
    assert not (tmp_path / "x").exists()


def test_a_subset_larger_than_the_training_set_is_refused_naming_both(measured, tmp_path):
    _, _, settings = measured
    import dataclasses

    larger = dataclasses.replace(settings, subset=97, models=["resnet20"])
    with pytest.raises(SettingError, match=r"^subset 97 is more than the 96 training images"):
        run_experiment(get_experiment("landscape"), larger, tmp_path / "x", quiet=True)


def test_the_page_renders_in_headless_chromium(measured, chromium):
    out, _, _ = measured
    chromium.get((out / "report.html").resolve().as_uri())
    widths = chromium.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert len(widths) == 3 and min(widths) > 100  # every figure decoded
    text = chromium.execute_script("return document.body.innerText")
    assert "Beside Li et al. 2018, Fig. 5" in text and "plain-56" in text
