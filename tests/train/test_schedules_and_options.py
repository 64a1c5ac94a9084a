"""Settings that must reach the training loop: the cosine and constant schedules, Nesterov
momentum, label smoothing, and --compile, each checked against a value computed by hand."""

import json
import math

import pytest
import torch

from reslearn.data.device_data import DeviceData
from reslearn.data.normalize import Normalizer
from reslearn.models import create_model
from reslearn.train import TrainConfig, Trainer, train
from reslearn.train.recipes import learning_rate

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


def _trainer(tmp_path, **settings) -> Trainer:
    # fp32 and NCHW, given: nothing is measured at start-up
    base = dict(
        model="resnet20", iterations=8, batch_size=16, precision="fp32", channels_last=False
    )
    config = TrainConfig(data="x", **{**base, **settings}).resolve(96)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (96, 3, 16, 16), dtype=torch.uint8)
    labels = torch.randint(0, 10, (96,))
    data = DeviceData(images, labels, Normalizer.fit(images), setting=config.setting)
    return Trainer(config, create_model("resnet20", num_classes=10), data)


def test_cosine_schedule_by_hand():
    def lr(step):
        return learning_rate(step, base_lr=0.1, schedule="cosine", iterations=100)

    # 0.1 * (1 + cos(pi * step / 100)) / 2, and 0 from the end on
    expected = {0: 0.1, 25: 0.05 * (1 + 2**-0.5), 50: 0.05, 75: 0.05 * (1 - 2**-0.5), 100: 0.0}
    for step, value in expected.items():
        assert lr(step) == pytest.approx(value, abs=1e-12), step
    assert lr(150) == pytest.approx(0.0, abs=1e-12)
    assert all(lr(s) > lr(s + 1) for s in range(99))  # falls at every step


def test_constant_schedule_ignores_milestones_and_length():
    for step in (0, 1, 49, 50, 99, 1000):
        value = learning_rate(
            step, base_lr=0.07, schedule="constant", iterations=100, milestones=(50, 75)
        )
        assert value == 0.07


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_the_schedule_reaches_the_optimizer(tmp_path, schedule):
    trainer = _trainer(tmp_path, schedule=schedule, lr=0.1)
    seen = []
    for step in range(8):
        trainer.train_step(step)
        seen.append(trainer.optimizer.param_groups[0]["lr"])
    if schedule == "cosine":
        expected = [0.05 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    else:
        expected = [0.1] * 8
    assert seen == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("recipe", "nesterov", "smoothing"), [("fast", True, 0.1),
                                                                ("paper", False, 0.0)])  # fmt: skip
def test_nesterov_and_label_smoothing_reach_the_optimizer_and_the_loss(
    tmp_path, recipe, nesterov, smoothing
):
    trainer = _trainer(tmp_path, recipe=recipe)
    group = trainer.optimizer.param_groups[0]
    assert group["nesterov"] is nesterov and group["momentum"] == 0.9
    # the loss of step 0 against the smoothed cross-entropy by hand, on the same batch (the
    # batch of a step is a pure function of seed and step; BN in train mode uses the batch's
    # statistics, so a forward pass here gives the logits the step sees)
    [(images, labels)] = trainer.micro_batches(0)  # one micro-batch
    trainer.model.train()
    with torch.no_grad():
        log_p = trainer.model(images).float().log_softmax(1)
    nll = -log_p.gather(1, labels[:, None]).squeeze(1)
    uniform = -log_p.mean(1)  # the cross-entropy against the uniform distribution
    expected = ((1 - smoothing) * nll + smoothing * uniform).mean()
    loss, _ = trainer.train_step(0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # and the two differ here, so a smoothing that got lost would show
    assert abs(nll.mean() - uniform.mean()) > 0.01


def test_label_smoothing_is_passed_to_cross_entropy(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path, recipe="paper", label_smoothing=0.25)
    calls = []
    real = torch.nn.functional.cross_entropy

    def recording(*args, **kwargs):
        calls.append(kwargs.get("label_smoothing", 0.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", recording)
    trainer.train_step(0)
    assert calls == [0.25]


@pytest.mark.slow
def test_compile_trains_a_tiny_model(image_folder, tmp_path):
    # the compiled network's final weights equal the eager one's up to rounding
    settings = dict(
        model="resnet20", iterations=3, batch_size=8, log_every=1, eval_every=3,
        precision="fp32", channels_last=False, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    compiled = train(TrainConfig(data=str(image_folder), compile=True, **settings),
                     tmp_path / "compiled", quiet=True)  # fmt: skip
    eager = train(TrainConfig(data=str(image_folder), **settings), tmp_path / "eager", quiet=True)
    config = json.loads((compiled.run_dir / "config.json").read_text())
    assert config["resolved"]["compile"] is True

    def losses(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [r["train_loss"] for r in map(json.loads, lines) if "train_loss" in r]

    assert losses(compiled.run_dir) == pytest.approx(losses(eager.run_dir), rel=1e-3)
    assert compiled.final["test_error"] == eager.final["test_error"]


def test_the_low_lr_warm_up_ends_in_a_real_run_where_the_logged_errors_say(
    write_image_folder, tmp_path
):
    # 9 classes in 3 colours: training starts near 8/9 wrong and can reach about 2/3, so the
    # 20-step average falls below 80% some steps after the window first fills
    data = write_image_folder(tmp_path / "nine", [f"c{i}" for i in range(9)],
                              {"train": 12, "test": 2})  # fmt: skip
    iterations = 60
    settings = dict(
        model="resnet20", iterations=iterations, batch_size=16, log_every=1,
        eval_every=iterations, low_lr_warmup=True, schedule="constant", lr=0.01,
        precision="fp32", channels_last=False, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    result = train(TrainConfig(data=str(data), **settings), tmp_path / "run", quiet=True)
    records = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    errors = {r["step"]: r["train_error"] for r in records if "train_error" in r}
    # one record per step, holding that step's error
    assert sorted(errors) == list(range(1, iterations + 1))
    # the oracle: the first step after which the last 20 steps' errors average below 80%
    ended = next(
        s
        for s in range(20, iterations + 1)
        if sum(errors[t] for t in range(s - 19, s + 1)) / 20 < 0.8
    )
    assert ended > 20, "the data was too easy to test where the warm-up ends"
    events = [r for r in records if r.get("event") == "low-lr warm-up ended"]
    assert events == [{"step": ended, "event": "low-lr warm-up ended", "lr": 0.01}]
    lrs = {r["step"]: r["lr"] for r in records if "train_error" in r}
    assert all(lrs[s] == pytest.approx(0.001) for s in range(1, ended))
    assert all(lrs[s] == pytest.approx(0.01) for s in range(ended + 1, iterations + 1))
