"""The paper's ImageNet recipe on a small JPEG folder: streamed training, plateau schedule,
exact resumption, bad files, and `reslearn eval --views`."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from reslearn.cli import main
from reslearn.data.device_data import DeviceData
from reslearn.data.normalize import Normalizer
from reslearn.models import create_model
from reslearn.precision import Setting
from reslearn.train import TrainConfig, Trainer, TrainingStopped, train
from reslearn.train.checkpoint import list_checkpoints

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

SMALL = dict(
    model="resnet18",
    recipe="imagenet-paper",
    crop_size=64,
    scale_range=[72, 96],
    batch_size=6,
    iterations=6,
    log_every=2,
    eval_every=4,
    workers=0,
    eval_batch_size=16,
)

FP32 = Setting("fp32", True)  # resolving needs the precision chosen: fp32 here


def test_the_recipe_has_the_papers_settings():
    resolved = TrainConfig(data="x", recipe="imagenet-paper").resolve(1_281_167, setting=FP32)
    assert (resolved.batch_size, resolved.lr, resolved.momentum) == (256, 0.1, 0.9)
    assert (resolved.weight_decay, resolved.iterations) == (1e-4, 600_000)
    assert resolved.schedule == "plateau" and resolved.loader == "stream"
    assert (resolved.crop_size, resolved.scale_range, resolved.lighting) == (224, [256, 480], 0.1)
    fixed = TrainConfig(data="x", recipe="imagenet-paper", schedule="step")
    fixed = fixed.resolve(1_281_167, setting=FP32)
    assert fixed.milestones == [150_000, 300_000, 450_000]
    with pytest.raises(ValueError, match="^scale_range must be two sides"):
        TrainConfig(data="x", recipe="imagenet-paper", crop_size=300).validate()


def test_a_streamed_run_trains_evaluates_and_resumes_exactly(photo_folder, tmp_path, capsys):
    # fp32 with channels_last, as `eval` below runs it: the same centre error, not a near one
    settings = {**SMALL, "precision": "fp32", "channels_last": True}
    result = train(TrainConfig(data=str(photo_folder), **settings), tmp_path / "run", quiet=True)
    run = result.run_dir
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["loader"] == "stream" and config["data"]["image_size"] == [64, 64]
    assert config["data"]["train_images"] == 36 and config["data"]["eval_images"] == {"test": 12}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "test_error" in r] == [4, 6]
    assert all(r["lr"] == 0.1 for r in records if "lr" in r)  # no plateau within 2 evaluations
    weights = load_file(run / "model.safetensors")

    # resume a copy from its step-4 checkpoint: the same weights and metrics, bit for bit
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "checkpoints" / "step-0000006.pt").unlink()
    train(None, resume=copy, quiet=True)
    resumed = load_file(copy / "model.safetensors")
    assert all(torch.equal(weights[k], resumed[k]) for k in weights)

    def steps(path):  # every logged number but the speed
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "images_per_s"} for r in lines]

    assert steps(copy / "metrics.jsonl") == steps(run / "metrics.jsonl")

    # the network evaluates through each test view, each reported on its own
    capsys.readouterr()
    code = main(["eval", str(run), "--views", "center", "10crop", "multiscale",
                 "--scales", "64,80,96", "--json", "--workers", "0",
                 "--precision", "fp32"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["views"]) == {"center", "10crop", "multiscale"}
    for view in report["views"].values():
        # a count of the 12 images, one confusion-matrix entry per image
        assert view["count"] == 12 and sum(map(sum, view["confusion"])) == 12
        wrong = 12 - sum(view["confusion"][i][i] for i in range(3))
        assert view["top1_error"] == wrong / 12
    # the centre view is the one training evaluated through: in fp32, the same error exactly
    last = [r for r in records if "test_error" in r][-1]
    assert report["views"]["center"]["top1_error"] == last["test_error"]
    assert report["views"]["center"]["loss"] == pytest.approx(last["test_loss"], rel=1e-4)


def test_the_plateau_schedule_divides_the_lr_and_remembers_it():
    config = TrainConfig(data="x", schedule="plateau", plateau_patience=2, batch_size=16)
    config = config.resolve(64, setting=FP32)
    images = torch.zeros(64, 3, 8, 8, dtype=torch.uint8)
    data = DeviceData(images, torch.zeros(64), Normalizer.fit(images), pad=0)
    trainer = Trainer(config, create_model("resnet20", num_classes=2), data)
    trainer.eval_sets = {"val": None, "test": None}  # only the names matter here
    errors = [0.5, 0.4, 0.4, 0.3995, 0.35, 0.36, 0.37]
    dropped = [trainer.update_plateau(10 * (i + 1), {"val_error": e}) for i, e in enumerate(errors)]
    assert dropped == [False, False, False, True, False, False, True]
    assert trainer.schedule.plateau_drops == [40, 70]
    assert trainer.lr_at(39) == pytest.approx(0.1) and trainer.lr_at(40) == pytest.approx(0.01)
    assert trainer.lr_at(70) == pytest.approx(0.001)
    assert not trainer.update_plateau(80, {"val_error": 0.38})  # waited 1, not the default 0
    state = trainer.state_dict()
    fresh = Trainer(config, create_model("resnet20", num_classes=2), data)
    fresh.load_state_dict(state)
    fresh.eval_sets = trainer.eval_sets
    assert fresh.lr_at(75) == pytest.approx(0.001)
    assert fresh.schedule.plateau_drops == [40, 70]
    assert fresh.schedule.plateau_waited == trainer.schedule.plateau_waited == 1
    for step, error in ((90, 0.39), (100, 0.40), (110, 0.30), (120, 0.31)):  # then alike
        got = fresh.update_plateau(step, {"val_error": error})
        assert got == trainer.update_plateau(step, {"val_error": error}), step
    assert fresh.schedule.plateau_drops == trainer.schedule.plateau_drops
    assert len(trainer.schedule.plateau_drops) == 3


def test_a_bad_file_stops_with_its_name_or_is_skipped(write_photo_folder, tmp_path):
    root = write_photo_folder(tmp_path / "photos", ["a", "b"], {"train": 6, "val": 2})
    bad = root / "train" / "b" / "002.JPEG"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    settings = {**SMALL, "batch_size": 4, "iterations": 6, "eval_every": 6}
    with pytest.raises(TrainingStopped, match="002.JPEG.*--skip-bad-images") as stopped:
        train(TrainConfig(data=str(root), **settings), tmp_path / "run", quiet=True)
    assert stopped.value.exit_code == 1
    with pytest.warns(UserWarning, match="002.JPEG"):
        result = train(
            TrainConfig(data=str(root), skip_bad_images=True, **settings),
            tmp_path / "skipping",
            quiet=True,
        )
    assert (result.run_dir / "model.safetensors").is_file()
    assert list_checkpoints(result.run_dir / "checkpoints")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--accumulate", "4"], "--batch-size 6 must be divisible by processes x --accumulate"),
        (["--sync-bn"], "--sync-bn needs several GPU processes"),
        (["--scale-range", "96", "72"], "--scale-range must be two sides LOW HIGH"),
        (["--plateau-patience", "0"], "--plateau-patience must be an integer >= 1"),
        (["--pad", "8"], "--pad only apply to --loader memory"),
        (["--loader", "memory"], "--crop-size, --scale-range only apply to --loader stream"),
    ],
)
def test_bad_settings_get_one_line(photo_folder, tmp_path, capsys, extra, message):
    args = [
        "train", "--data", str(photo_folder), "--model", "resnet18", "--recipe",
        "imagenet-paper", "--crop-size", "64", "--scale-range", "72", "96", "--batch-size",
        "6", "--iterations", "2", "--workers", "0", "--out", str(tmp_path / "run"), *extra,
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
