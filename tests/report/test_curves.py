"""curves.png: every evaluation shows, a run's only one included (a line through one point is
invisible, so sparse series get markers)."""

import matplotlib.axes
import pytest

from reslearn.report.curves import plot_curves


@pytest.fixture
def drawn_lines(monkeypatch) -> list:
    """Every Line2D that Axes.plot draws while the test runs."""
    lines: list = []
    real = matplotlib.axes.Axes.plot

    def recording(self, *args, **kwargs):
        made = real(self, *args, **kwargs)
        lines.extend(made)
        return made

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording)
    return lines


def _visible(line) -> bool:
    """Whether a Line2D shows anything: a segment needs two points, a marker needs one."""
    has_marker = line.get_marker() not in (None, "None", "", " ") and line.get_markersize() > 0
    return has_marker or (len(line.get_xdata()) > 1 and line.get_linestyle() != "None")


def test_a_run_with_one_evaluation_shows_its_test_error(drawn_lines, tmp_path):
    # a 20-iteration run: logged every 5 steps, evaluated once, at the end
    records = [{"step": s, "train_error": 0.9, "train_loss": 2.3} for s in (5, 10, 15, 20)]
    records.append({"step": 20, "test_error": 0.87, "test_loss": 2.26})
    plot_curves([("resnet20", records)], tmp_path / "curves.png")
    test = [line for line in drawn_lines if line.get_label() == "resnet20 test"]
    assert len(test) == 1 and list(test[0].get_xdata()) == [20]
    assert list(test[0].get_ydata()) == [pytest.approx(87.0)]
    assert all(_visible(line) for line in drawn_lines)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_series_stay_plain_lines(drawn_lines, tmp_path):
    # a full run's per-epoch evaluations: markers would only clutter the curve
    steps = range(100, 16_500, 100)
    records = [{"step": s, "train_error": 0.1} for s in steps]
    records += [{"step": s, "test_error": 0.08} for s in steps]
    plot_curves([("resnet20", records)], tmp_path / "curves.png")
    assert len(drawn_lines) == 2
    assert all(line.get_marker() in (None, "None", "") for line in drawn_lines)
