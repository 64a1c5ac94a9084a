"""``--precision auto``: the chooser's logic with injected timings, its cache, forced and
unsupported choices, an end-to-end run, and fp16 with a GradScaler (skipped steps, exact resume)."""

import dataclasses
import io
import json

import pytest
import torch

from reslearn import precision as P
from reslearn.data.device_data import DeviceData
from reslearn.data.normalize import Normalizer
from reslearn.models import create_model
from reslearn.precision import Choice, DecisionCache, Setting, choose, measure, pick, support
from reslearn.train import TrainConfig, Trainer, assemble_trainer, from_tensors, train
from reslearn.train.loop import LoopHooks, TrainingLoop

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

CPU = torch.device("cpu")
BF16_NHWC, BF16_NCHW = Setting("bf16", True), Setting("bf16", False)
FP32_NHWC, FP32_NCHW = Setting("fp32", True), Setting("fp32", False)
ALL = [FP32_NHWC, FP32_NCHW, BF16_NHWC, BF16_NCHW]


class Timings:
    """An injected ``measure``: fixed images/s per setting; counts the calls."""

    def __init__(self, rates):
        self.rates, self.calls = rates, []

    def __call__(self, setting):
        self.calls.append(setting)
        return self.rates[setting]


def test_the_fastest_wins():
    rates = {FP32_NHWC: 650, FP32_NCHW: 590, BF16_NHWC: 497, BF16_NCHW: 450}
    assert pick(rates) == FP32_NHWC
    rates = {FP32_NHWC: 300, FP32_NCHW: 280, BF16_NHWC: 900, BF16_NCHW: 700}
    assert pick(rates) == BF16_NHWC


def test_ties_prefer_fp32():
    # bf16 is 2% faster: within the 3% tie, so the exact arithmetic wins
    assert pick({FP32_NCHW: 1000, BF16_NHWC: 1020}) == FP32_NCHW
    # 5% faster is a real difference
    assert pick({FP32_NCHW: 1000, BF16_NHWC: 1050}) == BF16_NHWC
    # among tied fp32 layouts the faster one
    assert pick({FP32_NCHW: 1000, FP32_NHWC: 1010, BF16_NHWC: 1020}) == FP32_NHWC


def test_measured_choice_is_cached_and_reused(tmp_path):
    cache = DecisionCache(tmp_path / "precision.json")
    timings = Timings({FP32_NHWC: 650, FP32_NCHW: 590, BF16_NHWC: 497, BF16_NCHW: 450})
    first = choose(ALL, timings, key="k", cache=cache)
    assert first.setting == FP32_NHWC and first.source == "measured"
    assert len(timings.calls) >= 2 * len(ALL)  # a warm-up and at least one timed round each
    assert first.rates == {"fp32/nhwc": 650, "fp32/nchw": 590, "bf16/nhwc": 497, "bf16/nchw": 450}
    line = first.describe()
    assert line.startswith("precision: fp32 + channels_last (650 img/s; fp32 + NCHW 590")
    assert "measured" in line

    again = Timings({s: 1.0 for s in ALL})
    second = choose(ALL, again, key="k", cache=cache)
    assert again.calls == [] and second.source == "cached" and second.setting == FP32_NHWC
    assert second.describe().endswith("cached)")
    # a subset of the cached candidates (a forced layout) is decided from the cache too
    third = choose([BF16_NCHW, FP32_NCHW], again, key="k", cache=cache)
    assert again.calls == [] and third.setting == FP32_NCHW
    # another key is a miss
    choose(ALL, again, key="other", cache=cache)
    assert again.calls


@pytest.mark.parametrize(
    "body", ["{not json", "[]", '{"version": 1, "entries": {"k": {"bf16/nhwc": -3}}}', ""]
)
def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path, body):
    path = tmp_path / "precision.json"
    path.write_text(body)
    timings = Timings({FP32_NHWC: 100, FP32_NCHW: 90, BF16_NHWC: 300, BF16_NCHW: 200})
    choice = choose(ALL, timings, key="k", cache=DecisionCache(path))
    assert choice.setting == BF16_NHWC and choice.source == "measured"
    stored = json.loads(path.read_text())
    assert stored["entries"]["k"]["bf16/nhwc"] == 300


def test_a_forced_setting_is_not_measured(tmp_path):
    timings = Timings({})
    choice = choose([BF16_NCHW], timings, key="k", cache=DecisionCache(tmp_path / "c.json"))
    assert choice.setting == BF16_NCHW and choice.source == "forced" and timings.calls == []
    assert not (tmp_path / "c.json").exists()


def test_forced_flags_narrow_the_candidates(monkeypatch):
    monkeypatch.setattr(support, "auto_precisions", lambda device: ["fp32", "bf16"])
    assert P.candidates(CPU, "auto", None)[0] == ALL
    assert P.candidates(CPU, "fp32", None)[0] == [FP32_NHWC, FP32_NCHW]
    assert P.candidates(CPU, "auto", False)[0] == [FP32_NCHW, BF16_NCHW]
    assert P.candidates(CPU, "bf16", True) == ([BF16_NHWC], [])


def test_an_unsupported_precision_falls_back_with_one_line(monkeypatch):
    monkeypatch.setattr(support, "autocast_works", lambda device, precision: precision != "fp16")
    settings, notes = P.candidates(CPU, "fp16", True)
    assert settings == [FP32_NHWC]
    assert len(notes) == 1 and "fp16 autocast does not work" in notes[0] and "\n" not in notes[0]


def test_measuring_leaves_the_model_and_the_rng_alone():
    model = create_model("resnet20", num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    timer = P.step_timer(model, batch_size=4, input_shape=(3, 16, 16), device=CPU)
    for setting in ALL:
        assert timer(setting) > 0
    assert torch.equal(torch.get_rng_state(), rng)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert next(model.parameters()).is_contiguous()  # the original keeps its layout


def test_auto_end_to_end_records_and_keeps_its_choice(image_folder, tmp_path, capsys):
    config = TrainConfig(
        data=str(image_folder), model="resnet20", iterations=6, batch_size=16, log_every=2,
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    assert config.precision == "auto" and config.channels_last is None
    result = train(config, tmp_path / "run", quiet=True)
    err = capsys.readouterr().err
    assert "precision: " in err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    choice = saved["precision"]
    assert choice["source"] in ("measured", "cached")
    assert set(choice["images_per_s"]) >= {"fp32/nhwc", "fp32/nchw"}
    assert saved["resolved"]["precision"] == choice["precision"] == result.config.precision
    assert saved["resolved"]["channels_last"] == choice["channels_last"]
    assert saved["settings"]["precision"] == "auto"
    # the run's checkpoint records the arithmetic it was trained in
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))[-1]
    state = torch.load(checkpoint, weights_only=True)
    assert state["precision"] == {
        "precision": choice["precision"],
        "channels_last": choice["channels_last"],
    }


def test_a_resumed_run_keeps_the_recorded_choice(image_folder, tmp_path, capsys, monkeypatch):
    config = TrainConfig(
        data=str(image_folder), model="resnet20", iterations=4, batch_size=16, log_every=2,
        precision="fp32", channels_last=False, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    train(config, tmp_path / "run", quiet=True)

    def fail(*args, **kwargs):
        raise AssertionError("a resumed run must not measure again")

    monkeypatch.setattr(measure, "choose", fail)
    monkeypatch.setattr(measure, "step_timer", fail)
    result = train(None, resume=tmp_path / "run", quiet=True)
    assert (result.config.precision, result.config.channels_last) == ("fp32", False)


# -- fp16 with a GradScaler ----------------------------------------------------------------------

FP16_WORKS = P.autocast_works(CPU, "fp16")
needs_fp16 = pytest.mark.skipif(
    not FP16_WORKS, reason=f"torch {torch.__version__} cannot autocast fp16 on this CPU"
)


def _fp16_trainer(images, labels, *, init_scale=2.0**24):
    torch.manual_seed(0)
    data = DeviceData(images, labels, Normalizer.fit(images), setting=Setting("fp16", False))
    config = TrainConfig(
        data="tiny", model="resnet20", precision="fp16", channels_last=False, batch_size=8,
        iterations=12, eval_every=1000, log_every=4,
    ).resolve(len(labels))  # fmt: skip
    model = create_model("resnet20", num_classes=3).to(images.device)
    trainer = Trainer(config, model, data)
    # a huge first scale makes the first steps overflow, so skipping is exercised
    device = images.device.type
    trainer.scaler = torch.amp.GradScaler(device, init_scale=init_scale, growth_interval=3)
    return trainer


@pytest.fixture(scope="module")
def tiny_images():
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (48, 3, 16, 16), dtype=torch.uint8, generator=generator)
    return images, torch.arange(48) % 3


@needs_fp16
def test_fp16_overflowed_steps_are_skipped_and_logged(tiny_images):
    trainer = _fp16_trainer(*tiny_images)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items() if "weight" in k}
    trainer.train_step(0)
    assert trainer.last_step_skipped and trainer.scaler.get_scale() == 2.0**23
    for key, value in before.items():  # a skipped step changes no weight
        assert torch.equal(trainer.model.state_dict()[key], value), key
    records = []
    trainer = _fp16_trainer(*tiny_images)
    TrainingLoop(trainer, LoopHooks(log=records.append, progress=False, stop_signals=()), 0).run()
    skipped = [r for r in records if r.get("event") == "fp16 overflow: step skipped"]
    assert skipped and skipped[0]["step"] == 1 and skipped[0]["scale"] == 2.0**23
    assert len(skipped) < 12  # the scale came down and training went on
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


@needs_fp16
def test_fp16_resume_is_exact(tiny_images):
    whole = _fp16_trainer(*tiny_images)
    for step in range(12):
        whole.train_step(step)

    first = _fp16_trainer(*tiny_images)
    for step in range(5):
        first.train_step(step)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert "scaler" in state

    second = _fp16_trainer(*tiny_images, init_scale=1.0)  # the checkpoint's scale must win
    second.load_state_dict(state)
    assert second.scaler.get_scale() == first.scaler.get_scale()
    for step in range(5, 12):
        second.train_step(step)
    assert second.scaler.get_scale() == whole.scaler.get_scale()
    for key, value in whole.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value), key


def _rigged_measurement(monkeypatch, tmp_path, winner: str) -> None:
    """``auto`` measures rates rigged so that ``winner`` (channels_last) is clearly fastest,
    with an empty decision cache: the outcome no longer depends on the machine's load."""

    def timer(*args, **kwargs):
        return lambda s: (3000.0 if s.precision == winner else 1000.0) + 100 * s.channels_last

    monkeypatch.setattr(measure, "step_timer", timer)
    monkeypatch.setattr(measure, "default_cache", lambda: DecisionCache(tmp_path / "p.json"))


@pytest.mark.parametrize("winner", ["fp32", "bf16"])
def test_assembling_a_trainer_chooses_before_the_data_is_normalised(
    tiny_images, capsys, monkeypatch, tmp_path, winner
):
    if not support.autocast_works(CPU, "bf16"):
        pytest.skip("bf16 autocast does not work on this CPU: auto has nothing to choose")
    monkeypatch.setattr(support, "auto_precisions", lambda device: ["fp32", "bf16"])
    _rigged_measurement(monkeypatch, tmp_path, winner)
    images, labels = tiny_images
    config = TrainConfig(data="tiny", batch_size=8, iterations=2)
    data = from_tensors(config, images, labels, test=(images[:6], labels[:6]))
    assert data.train is None  # nothing is normalised before the choice
    model = create_model("resnet20", num_classes=3)
    trainer, resolved, chosen = assemble_trainer(config, model, data, device=CPU)
    assert chosen.source == "measured"
    assert resolved.precision == trainer.config.precision == chosen.precision == winner
    assert resolved.channels_last is chosen.channels_last is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.precision = "fp16"  # resolved once: nothing changes it later
    expected = {"bf16": torch.bfloat16, "fp32": torch.float32}[winner]
    assert data.train.padded.dtype == expected  # normalised straight into the chosen dtype
    assert data.eval_sets["test"].inputs.dtype == expected
    assert f"precision: {winner} + channels_last" in capsys.readouterr().err
    trainer.train_step(0)


def test_a_trainer_refuses_data_normalised_for_another_setting(tiny_images):
    images, labels = tiny_images
    config = TrainConfig(data="tiny", batch_size=8, iterations=2, precision="fp32")
    resolved = config.resolve(len(labels), setting=FP32_NCHW)
    data = DeviceData(images, labels, Normalizer.fit(images), setting=FP32_NHWC)
    with pytest.raises(ValueError, match="normalised for fp32 \\+ channels_last, the run trains"):
        Trainer(resolved, create_model("resnet20", num_classes=3), data)
    with pytest.raises(ValueError, match="needs the measured choice"):
        TrainConfig(data="tiny", batch_size=8, iterations=2).resolve(len(labels))


def test_choice_as_dict_is_json_ready():
    choice = Choice(BF16_NHWC, "measured", {"bf16/nhwc": 10.0, "fp32/nhwc": 5.0}, 1.234)
    record = json.loads(json.dumps(choice.as_dict()))
    assert record["precision"] == "bf16" and record["channels_last"] is True
    assert record["images_per_s"] == {"bf16/nhwc": 10.0, "fp32/nhwc": 5.0}


def test_a_noisy_measurement_is_used_but_not_cached(tmp_path):
    cache = DecisionCache(tmp_path / "precision.json")
    calls = {s: 0 for s in ALL}

    def noisy(setting):  # one round of fp32 + NCHW ran 3x faster than all others: a busy machine
        calls[setting] += 1
        base = {FP32_NHWC: 650, FP32_NCHW: 590, BF16_NHWC: 497, BF16_NCHW: 450}[setting]
        return base * (3 if setting == FP32_NCHW and calls[setting] == 3 else 1)

    choice = choose(ALL, noisy, key="k", cache=cache)
    assert choice.source == "measured" and choice.setting == FP32_NCHW
    assert any("not cached" in note for note in choice.notes)
    assert cache.get("k") == {}
    steady = choose(ALL, Timings({FP32_NHWC: 650, FP32_NCHW: 590, BF16_NHWC: 497,
                                  BF16_NCHW: 450}), key="k", cache=cache)  # fmt: skip
    assert not steady.notes and cache.get("k")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_on_cuda_auto_measures_the_gpus_precisions_and_fp16_skips_overflows(tiny_images):
    cuda = torch.device("cuda")
    settings, notes = P.candidates(cuda, "auto", None)
    # bf16 where the GPU has it (Ampere and newer), else fp16 with a GradScaler
    assert {s.precision for s in settings} in ({"fp32", "bf16"}, {"fp32", "fp16"}) and not notes
    images, labels = tiny_images
    trainer = _fp16_trainer(images.to(cuda), labels.to(cuda))
    records = []
    TrainingLoop(trainer, LoopHooks(log=records.append, progress=False, stop_signals=()), 0).run()
    skipped = [r for r in records if r.get("event") == "fp16 overflow: step skipped"]
    assert skipped and skipped[0]["step"] == 1
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    state = trainer.state_dict()
    assert state["scaler"]["scale"] == trainer.scaler.get_scale()


@pytest.mark.parametrize("fast", [True, False])
def test_auto_measures_bf16_on_a_cpu_only_where_onednn_runs_it_fast(monkeypatch, fast):
    monkeypatch.setattr(support, "_cpu_bf16_fast", lambda: fast)
    monkeypatch.setattr(support, "autocast_works", lambda device, precision: True)
    assert support.auto_precisions(CPU) == (["fp32", "bf16"] if fast else ["fp32"])
    # forced, bf16 still runs where its autocast works (emulated, slowly)
    assert support.usable_precision(CPU, "bf16") == ("bf16", None)


def test_auto_never_measures_fp16_on_a_cpu_and_forced_fp16_says_it_is_slow(monkeypatch):
    monkeypatch.setattr(support, "_cpu_bf16_fast", lambda: True)
    monkeypatch.setattr(support, "autocast_works", lambda device, precision: True)
    settings, notes = support.candidates(CPU, "auto", None)
    assert {s.precision for s in settings} == {"fp32", "bf16"} and not notes
    settings, notes = support.candidates(CPU, "fp16", True)
    assert [s.precision for s in settings] == ["fp16"]
    assert notes == [support.CPU_FP16_SLOW] and "\n" not in notes[0]
    _, notes = support.candidates(CPU, "bf16", True)
    assert not notes
