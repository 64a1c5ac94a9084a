"""The explore page in a real browser (headless Chromium), offline: it loads without console
errors, moving the shift controls shows the precomputed values for that shift (checked against
the network itself), the drawn class map is reslearn's up-sampling, and a screenshot is not
blank. Also the page's size budget."""

import io
import json
import re
import shlex

import numpy as np
import pytest
import torch
from PIL import Image
from test_explore import CIFAR_CLASSES, scene, shifted, write_weights

import reslearn
from reslearn.analysis.cam import class_activation_maps, normalize_maps
from reslearn.analysis.upsample import upsample
from reslearn.cli import main

#: The size budget: a page of 12 CIFAR-sized images through one ResNet-20, at the default shift
#: range (-8..8 px, both border modes) and channels (2 per stage), stays under this.
BUDGET_BYTES = 6_000_000


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Two photo-like images, the shipped ResNet-20 beside a network without GAP."""
    root = tmp_path_factory.mktemp("explore")
    files = []
    for seed in (3, 4):
        files.append(root / f"scene{seed}.png")
        Image.fromarray(scene(seed)).save(files[-1])
    flat = write_weights(root / "flat.safetensors", CIFAR_CLASSES, pool="flatten", map_size=8)
    out = root / "explore.html"
    argv = ["explore", "reslearn:resnet20-cifar10", *map(str, files), "--compare", str(flat),
            "--max-shift", "4", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out, files


def shown_rows(browser, network: int) -> list[tuple[str, float, str]]:
    return browser.execute_script(
        f"return Array.from(document.querySelectorAll('#network-{network} table.probabilities tr'))"
        ".map(r => [r.dataset.class, Number(r.dataset.p), r.querySelector('td.p').innerText])"
    )


def expected_rows(x: torch.Tensor, dy: int, dx: int, mode: str) -> list[tuple[str, float]]:
    trained = reslearn.load_pretrained("resnet20-cifar10")
    with torch.no_grad():
        p = trained.model(shifted(x, dy, dx, mode)).softmax(1)[0]
    values, indices = p.topk(5)
    return [(trained.classes[i], v) for i, v in zip(indices.tolist(), values.tolist())]


def _opened(browser, page):
    """``browser`` on the page, once its script says it is ready, with no severe console line."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.resolve().as_uri())
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return document.body.dataset.ready")
    )
    assert browser.execute_script("return document.body.dataset.ready") == "true"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    return browser


def test_the_page_works_offline_in_chromium(page, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out, files = page
    browser = _opened(chromium, out)

    # move the controls as a user does: the keyboard on the sliders, a click on a radio button
    browser.find_element(By.ID, "dx").send_keys(Keys.ARROW_RIGHT * 3)
    browser.find_element(By.ID, "dy").send_keys(Keys.ARROW_LEFT * 2)
    state = browser.execute_script("return window.reslearnExplore.state")
    assert (state["dx"], state["dy"], state["mode"]) == (3, -2, "circular")
    trained = reslearn.load_pretrained("resnet20-cifar10")
    x = trained.normalizer(torch.from_numpy(scene(3).copy()).permute(2, 0, 1)[None]).float()
    for mode in ("circular", "zero"):
        browser.find_element(By.CSS_SELECTOR, f"input[name=mode][value={mode}]").click()
        rows = shown_rows(browser, 0)
        expected = expected_rows(x, -2, 3, mode)
        assert [r[0] for r in rows] == [name for name, _ in expected]
        assert np.allclose([r[1] for r in rows], [p for _, p in expected], atol=1e-4)
        assert rows[0][2] == f"{100 * expected[0][1]:.1f}%"
    assert len(shown_rows(browser, 1)) == 5  # the compared network has its own column
    assert "CAM does not apply" in browser.find_element(By.ID, "network-1").text

    # the drawn map is reslearn's up-sampling of the CAM at that shift
    browser.find_element(By.CSS_SELECTOR, "input[name=interpolation][value=bicubic]").click()
    drawn = np.array(browser.execute_script("return Array.from(window.reslearnExplore.heat(0))"))
    label = browser.execute_script("return window.reslearnExplore.probabilities(0)")  # sanity
    assert label
    cam = class_activation_maps(trained.model, x, topk=1)
    moved = class_activation_maps(trained.model, shifted(x, -2, 3, "zero"),
                                  target=int(cam.classes[0, 0]))  # fmt: skip
    expected = normalize_maps(upsample(moved.maps[0, 0], (32, 32), "bicubic")).numpy().ravel()
    assert np.abs(drawn - expected).max() < 0.02  # the page stores maps in 8 bits

    screenshot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
    assert len(np.unique(screenshot.reshape(-1, 3), axis=0)) > 200  # pictures, not a blank page


def test_the_page_holds_both_networks_and_states_its_command(page):
    out, files = page
    data = json.loads(
        re.search(r'id="explore-data">(.*?)</script>', out.read_text(), re.S)[1].replace(
            "<\\/", "</"
        )
    )
    assert [n["method"] for n in data["networks"]] == ["CAM", "Grad-CAM"]
    assert [i["name"] for i in data["images"]] == [f.name for f in files]
    assert data["command"].startswith("reslearn explore reslearn:resnet20-cifar10")
    side = 2 * data["max_shift"] + 1
    view = data["networks"][0]["views"][0]["modes"]["zero"]
    assert len(view["top"]) == side * side and len(view["errors"]["layer3"]) == side * side


@pytest.mark.slow
def test_twelve_images_fit_the_size_budget(tmp_path):
    files = []
    for seed in range(12):
        files.append(tmp_path / f"{seed}.png")
        Image.fromarray(scene(100 + seed)).save(files[-1])
    out = tmp_path / "budget.html"
    assert main(["explore", "reslearn:resnet20-cifar10", *map(str, files), "-o", str(out)]) == 0
    assert out.stat().st_size < BUDGET_BYTES, f"{out.stat().st_size:,} bytes"


#: Class names that end a script, open a comment or a CDATA section, or are not JSON-safe in
#: JavaScript: legal folder names, carried in the weights' metadata.
ODD_CLASSES = ["<!-- x", "</script><script>document.title='pwned'</script>",
               'a&b "q" \\ é \u2028 ]]> --> <![CDATA[']  # fmt: skip


@pytest.fixture(scope="module")
def odd_page(tmp_path_factory):
    """A page whose class names, image file name and weights path hold every such text."""
    root = tmp_path_factory.mktemp("explore-odd") / "dir <!-- & <script>"
    root.mkdir()
    image = root / "<!-- pic & <b> \u2028.png"
    Image.fromarray(scene(5)).save(image)
    weights = write_weights(root / "w <!--.safetensors", ODD_CLASSES)
    out = root / "odd.html"
    assert main(["explore", str(weights), str(image), "--max-shift", "1", "-o", str(out)]) == 0
    return out, image, weights


def test_odd_names_stay_inside_the_data_and_parse_back_as_written(odd_page):
    out, image, weights = odd_page
    page = out.read_text(encoding="utf-8")
    assert page.count("<script") == 2 and page.count("</script>") == 2  # none opened or closed
    text = re.search(r'id="explore-data">(.*?)</script>', page, re.S)[1]
    assert not {"<", ">", "&", "\u2028"} & set(text)
    data = json.loads(text)
    assert data["networks"][0]["classes"] == ODD_CLASSES
    assert data["networks"][0]["label"] == str(weights)
    assert data["images"][0]["name"] == image.name
    assert str(image) in shlex.split(data["command"])


def test_odd_names_show_as_written_in_chromium(odd_page, chromium):
    out, image, weights = odd_page
    browser = _opened(chromium, out)
    assert browser.title == f"reslearn explore: {weights}"  # no script of a class name ran
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#network-0 table.probabilities tr'))"
        ".map(r => [r.dataset.class, r.querySelector('td').textContent])"
    )
    assert sorted(name for name, _ in shown) == sorted(ODD_CLASSES)
    assert all(attribute == text for attribute, text in shown)
    footer = browser.execute_script("return document.getElementById('footer').textContent")
    assert shlex.quote(str(image)) in footer
    button = browser.execute_script("return document.querySelector('#images button').title")
    assert button.startswith(image.name)
