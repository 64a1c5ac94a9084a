"""reslearn's own JSON files (config.json, summary.json, results.json) cut short or broken:
every reader names the file and says it is damaged, in one line."""

import json

import pytest

from reslearn.cli import main
from reslearn.errors import UserError
from reslearn.jsonfile import read_json
from reslearn.train import TrainConfig, train

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, write_image_folder):
    root = tmp_path_factory.mktemp("damaged")
    data = write_image_folder(root / "data", ["a", "b", "c"], {"train": 8, "test": 2})
    config = TrainConfig(data=str(data), iterations=2, batch_size=8, cache_dir=str(root / "c"))
    return train(config, root / "run", quiet=True).run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def _truncate(path, keep: int = 22) -> None:
    path.write_text(path.read_text()[:keep])


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--resume", "RUN"],
        ["train", "--resume", "RUN", "--debug"],  # --debug is not a new setting
        ["eval", "RUN", "--device", "cpu", "--json"],
        ["report", "RUN"],
    ],
)
def test_a_truncated_config_json_is_named(run_copy, capsys, monkeypatch, argv):
    """`train --resume` used to print only "Expecting value: line 1 column 23"."""
    monkeypatch.delenv("RESLEARN_DEBUG", raising=False)
    config = run_copy / "config.json"
    _truncate(config)
    assert main([str(run_copy) if a == "RUN" else a for a in argv]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == ""
    assert lines[-1].startswith(f"reslearn {argv[0]}: error: '{config}' is damaged: not valid JSON")
    if "--debug" in argv:
        assert lines[0] == "Traceback (most recent call last):"
    else:
        assert len(lines) == 1, err


def test_a_config_json_without_settings_is_named(run_copy, capsys):
    config = run_copy / "config.json"
    record = json.loads(config.read_text())
    del record["settings"]
    config.write_text(json.dumps(record))
    with pytest.raises(UserError, match=f"'{config}' is damaged: it has no settings record"):
        TrainConfig.load(config)
    record["settings"] = {"data": "x", "no_such_setting": 1}
    config.write_text(json.dumps(record))
    with pytest.raises(UserError, match="is damaged: config has unknown settings: no_such_sett"):
        TrainConfig.load(config)


def test_an_empty_summary_is_named_by_the_report(run_copy, capsys):
    (run_copy / "summary.json").write_text("")
    assert main(["report", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert f"'{run_copy / 'summary.json'}' is damaged: empty" in err


def test_an_experiments_results_json(tmp_path):
    from reslearn.experiments.report_page import write_experiment_report

    (tmp_path / "results.json").write_text('{"experiment": "degradation", "ti')
    with pytest.raises(UserError, match="results.json' is damaged: not valid JSON"):
        write_experiment_report(tmp_path)


def test_read_json_leaves_missing_files_to_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "nope.json")
    (tmp_path / "latin1.json").write_bytes(b'{"caf\xe9": 1}')
    with pytest.raises(UserError, match="latin1.json' is damaged: not valid JSON"):
        read_json(tmp_path / "latin1.json")
