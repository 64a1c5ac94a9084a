"""Recipes, schedules and the checks every setting gets before any work starts."""

import pytest

from reslearn.precision import Setting
from reslearn.train import TrainConfig
from reslearn.train.recipes import learning_rate

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

FP32 = Setting("fp32", True)  # resolving needs the precision chosen: fp32 here


def test_paper_recipe_matches_section_4_2():
    c = TrainConfig(data="x", model="resnet20").resolve(train_images=50_000, setting=FP32)
    assert (c.batch_size, c.lr, c.momentum, c.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert c.iterations == 64_000 and c.milestones == [32_000, 48_000]
    assert not c.low_lr_warmup
    assert c.eval_every == 390  # one epoch of 50k images at batch 128
    lr = [
        learning_rate(
            s, base_lr=0.1, schedule="step", iterations=64_000, milestones=(32_000, 48_000)
        )
        for s in (0, 31_999, 32_000, 48_000, 63_999)
    ]
    assert lr == pytest.approx([0.1, 0.1, 0.01, 0.001, 0.001])


def test_paper_recipe_warms_up_110_layers_and_deeper():
    assert TrainConfig(data="x", model="resnet110").resolve(50_000, setting=FP32).low_lr_warmup
    assert TrainConfig(data="x", model="resnet1202").resolve(50_000, setting=FP32).low_lr_warmup
    assert not TrainConfig(data="x", model="resnet56").resolve(50_000, setting=FP32).low_lr_warmup


def test_iterations_scale_the_milestones():
    c = TrainConfig(data="x", iterations=8000).resolve(50_000, setting=FP32)
    assert c.milestones == [4000, 6000]


@pytest.mark.parametrize("iterations,milestones", [(3, [2]), (2, [1]), (1, [])])
def test_tiny_budgets_keep_each_lr_drop_once_and_inside_the_run(iterations, milestones):
    c = TrainConfig(data="x", model="resnet20", iterations=iterations)
    c = c.resolve(50_000, setting=FP32)
    assert c.milestones == milestones


def test_fast_recipe_is_thirty_epochs_of_onecycle():
    c = TrainConfig(data="x", recipe="fast").resolve(50_000, setting=FP32)
    assert c.iterations == 30 * 390 and c.schedule == "onecycle"
    peak = learning_rate(
        c.warmup_steps,
        base_lr=c.lr,
        schedule="onecycle",
        iterations=c.iterations,
        warmup_steps=c.warmup_steps,
    )
    end = learning_rate(
        c.iterations - 1,
        base_lr=c.lr,
        schedule="onecycle",
        iterations=c.iterations,
        warmup_steps=c.warmup_steps,
    )
    start = learning_rate(
        0, base_lr=c.lr, schedule="onecycle", iterations=c.iterations, warmup_steps=c.warmup_steps
    )
    assert peak == pytest.approx(c.lr) and end < 1e-5 and start == pytest.approx(c.lr / 10)


def test_explicit_settings_override_the_recipe():
    c = TrainConfig(data="x", recipe="fast", lr=0.05, epochs=2).resolve(1000, setting=FP32)
    assert c.lr == 0.05 and c.iterations == 2 * (1000 // 128)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lr": -0.1}, "^lr must be a positive number"),
        ({"batch_size": 0}, "^batch_size must be"),
        ({"iterations": 100, "milestones": [50, 150]}, "milestone 150"),
        ({"milestones": [20, 10], "iterations": 100}, "must increase"),
        ({"momentum": 1.5}, "^momentum must be below 1"),
        ({"weight_decay": -1.0}, "^weight_decay must be >= 0"),
        ({"label_smoothing": 1.0}, "^label_smoothing must be in"),
        ({"precision": "fp8"}, "^precision must be one of auto, bf16, fp16, fp32"),
        ({"model": "resnet21"}, "resnet21"),
        ({"recipe": "slow"}, "recipe"),
        ({"iterations": 10, "epochs": 1.0}, "not both"),
        ({"batch_size": 5000}, "larger than"),
        ({"model_options": {"num_classes": 5}}, "model option num_classes comes from the data"),
        ({"model_options": {"in_channels": 1}}, "model option in_channels comes from the data"),
        ({"model_options": {"shortcuts": "B"}}, "unknown model option 'shortcuts'; allowed: sh"),
    ],
)
def test_invalid_settings_fail_with_one_line(settings, message):
    with pytest.raises(ValueError, match=message) as error:
        TrainConfig(data="x", **settings).resolve(1000, setting=FP32)
    assert "\n" not in str(error.value)
    assert "--" not in str(error.value)  # the library names fields, the command line flags


def test_the_command_line_names_the_flags(capsys):
    from reslearn.cli import main

    assert main(["train", "--data", "x", "--batch-size", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "reslearn train: error: --batch-size must be a positive number; got 0"
    assert main(["train", "--data", "x", "--warmup-steps", "9", "--iterations", "5"]) == 2
    assert "--warmup-steps 9 must be below --iterations 5" in capsys.readouterr().err


def test_config_round_trips_through_json():
    c = TrainConfig(
        data="x", model="plain20", lr=0.3, milestones=[5, 9], model_options={"shortcut": "B"}
    )
    assert TrainConfig.from_dict(c.as_dict()) == c
    with pytest.raises(ValueError, match="unknown settings: typo"):
        TrainConfig.from_dict({**c.as_dict(), "typo": 1})
