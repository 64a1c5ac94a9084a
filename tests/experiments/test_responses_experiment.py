"""The responses experiment measures networks it trains and networks given as weights, and its
numbers are those of a direct layer_responses call."""

import pytest

from reslearn.analysis import layer_responses
from reslearn.data import load_dataset
from reslearn.data.device_data import to_device_uint8
from reslearn.data.sampling import sample_indices
from reslearn.experiments import get_experiment, run_experiment
from reslearn.experiments.report_page import write_experiment_report
from reslearn.train import TrainConfig, train
from reslearn.weights import load_weights

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


def _weights(data, settings, out, model: str, iterations: int):
    """Train ``model`` briefly outside any experiment; its model.safetensors."""
    config = TrainConfig(data=str(data), model=model, iterations=iterations, batch_size=16,
                         cache_dir=settings().cache_dir)  # fmt: skip
    return train(config, out, quiet=True).run_dir / "model.safetensors"


def test_responses_of_trained_and_given_networks(settings, tiny_data, tmp_path):
    given = _weights(tiny_data, settings, tmp_path / "given", "plain20", 3)
    out = tmp_path / "responses"
    results = run_experiment(
        get_experiment("responses"),
        settings(models=["plain20", "resnet20"], weights={"plain20": str(given)}, max_images=20),
        out,
        quiet=True,
        draw=write_experiment_report,
    )
    assert [r["name"] for r in results["runs"]] == ["resnet20-s0"]  # plain20 was given
    measured = {m["model"]: m for m in results["responses"]}
    assert set(measured) == {"plain20", "resnet20"}
    assert not measured["plain20"]["trained_here"] and measured["resnet20"]["trained_here"]

    trained = load_weights(given)
    test = load_dataset(str(tiny_data), cache_dir=settings().cache_dir).test
    images = test.images[sample_indices(len(test.labels), 20)]  # the experiment's sample
    direct = layer_responses(trained.model, [trained.normalizer(to_device_uint8(images, "cpu"))])
    assert [x["std"] for x in measured["plain20"]["layers"]] == pytest.approx(
        [x.std for x in direct], rel=1e-6
    )
    assert len(direct) == 19 and measured["plain20"]["images"] == 20
    assert [c["claim"] for c in results["claims"]] == ["ResNet-20 responds less than plain-20"]
    assert (out / "responses.png").stat().st_size > 0


def test_weights_of_another_network_are_refused(settings, tmp_path, tiny_data):
    given = _weights(tiny_data, settings, tmp_path / "r20", "resnet20", 2)
    with pytest.raises(ValueError, match="holds a resnet20, not a plain20"):
        run_experiment(
            get_experiment("responses"),
            settings(models=["plain20"], weights={"plain20": str(given)}),
            tmp_path / "out",
            quiet=True,
        )


def test_networks_all_given_as_weights_train_nothing(settings, tmp_path, tiny_data):
    given = _weights(tiny_data, settings, tmp_path / "r20", "resnet20", 2)
    out = tmp_path / "out"
    results = run_experiment(
        get_experiment("responses"),
        settings(models=["resnet20"], weights={"resnet20": str(given)}),
        out,
        quiet=True,
        draw=write_experiment_report,
    )
    assert results["runs"] == [] and results["budget"]["iterations"] is None
    assert (
        "No training runs: every network was given as weights" in (out / "report.html").read_text()
    )
