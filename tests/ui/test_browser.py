"""The web UI in a real browser (Debian's chromium driven by Playwright) against a tiny model.

One visitor's path: type an Indonesian prompt, read the English preview, generate, find the
image (a real PNG with its parameters) in the gallery, look at its parameters, cancel a long run,
switch the page to English and read an error there. Screenshots are kept in test-artifacts/.
Every wait is on something the page shows; nothing depends on how fast the machine is.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Skip on a developer's machine; in CI (``CI=true``) fail, so a lost browser cannot turn CI green."""
    if IN_CI:
        pytest.fail(f"{what}; CI=true, so the browser test must run (see .ci/run)", pytrace=False)
    pytest.skip(what)


try:
    import playwright.sync_api as playwright_api
except ImportError:
    missing("no playwright: pip install playwright")
CHROMIUM = os.environ.get("GAMBARKAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1366, "height": 768}  # the most common laptop screen
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
TIMEOUT_MS = 240_000  # generous: CI machines are small and busy; nothing here is timed
LONG_STEPS = 150  # the run the test cancels
HOLD_AT_STEP = 4  # after the previews of steps 2 and 4


def gated_engine(settings, slow_stop: float = 0.0):
    """An engine that holds the first two long runs at step 4 until they are cancelled.

    Without it the cancel would race the end of the run (a tiny model takes 150 steps in a few
    seconds); with it the run cannot finish first, and a run that lost its 150 steps (finishing
    at the package's 2) never reaches the hold, so the test fails instead of passing by luck.
    ``slow_stop`` keeps the cancelled run busy a while longer, like a slow step on a loaded
    machine: a Gambarkan clicked meanwhile must still run (it once was dropped). Later long runs
    are not held and run the package's 2 steps, so a busy machine does not slow the test down.
    """
    from gambarkan.engine.generate import Engine

    held = []

    class GatedEngine(Engine):
        def generate(self, request, *, on_progress=None, cancel=None, preview_every=0):
            if request.steps == LONG_STEPS and len(held) >= 2:
                request = request.merged(steps=2)
            elif request.steps == LONG_STEPS and on_progress is not None and cancel is not None:
                held.append(request)
                report = on_progress

                def on_progress(p):
                    report(p)
                    if p.step >= HOLD_AT_STEP:
                        if cancel.wait(TIMEOUT_MS / 1000):
                            time.sleep(slow_stop)

            return super().generate(request, on_progress=on_progress, cancel=cancel, preview_every=preview_every)

    return GatedEngine(settings, surface="ui")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ui_url(ui_settings):
    from gambarkan.ui.app import launch

    demo = launch(block=False, port=free_port(), settings=ui_settings, engine=gated_engine(ui_settings, slow_stop=3.0))
    try:
        yield demo.local_url
    finally:
        demo.close()
        demo.gambarkan.queue.shutdown(5)


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        missing(f"no chromium at {CHROMIUM}: apt-get install chromium")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            browser.close()


def type_number(page, selector: str, value: str) -> None:
    """Type into a number field the way a person does (select, type, leave the field), then check it took.

    A bare ``fill`` was once lost on a busy CI machine (the run went out with the old values),
    so the value is typed key by key, committed with Tab, and read back before going on.
    """
    field = page.locator(selector)
    field.click()
    field.press("Control+a")
    field.press_sequentially(value)
    field.press("Tab")
    playwright_api.expect(field).to_have_value(value)


def in_viewport(locator) -> bool:
    """Whether the element's whole box is on the screen as it is now (nothing to scroll)."""
    box = locator.bounding_box()
    return bool(box) and box["y"] >= 0 and box["x"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"] and box["x"] + box["width"] <= VIEWPORT["width"]


def screenshot_for_docs(page, name: str) -> None:
    """A small PNG of the screen as a person sees it, for the guides (docs/img/NAME.png)."""
    from PIL import Image

    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    shot = Image.open(io.BytesIO(page.screenshot()))
    shot.thumbnail((960, 960))
    shot.convert("P", palette=Image.Palette.ADAPTIVE, colors=128).save(DOCS_IMG / f"{name}.png", optimize=True)


def test_first_screen_has_the_button_and_a_bad_width_is_explained_in_indonesian(page, ui_url: str) -> None:  # page first: no browser, no UI launch
    from gambarkan.models.catalog import get_package
    from gambarkan.ui.helpers import purpose

    expect = playwright_api.expect
    page.goto(ui_url)
    button = page.locator("button#gk-generate")
    expect(button).to_have_text("Gambarkan")
    assert in_viewport(button), f"the Gambarkan button is below the first screen: {button.bounding_box()}"
    # Each package says what it is for (and its size, state, speed, licence) without being chosen first.
    realistic = get_package("realistis")  # a built-in package (the tiny ones replace umum, anime, cepat)
    choice = page.locator("#gk-package label", has_text=f"{realistic.title('id')} — ")
    expect(choice).to_contain_text(purpose(realistic, "id"))
    expect(choice).to_contain_text("belum terunduh")
    expect(page.locator("#gk-package-info")).not_to_contain_text("**")  # no stray Markdown marks
    page.locator("#gk-prompt textarea").fill("kucing oranye tidur di atas sofa")
    expect(page.locator("#gk-preview textarea")).to_have_value("orange cat sleeping on a sofa")
    screenshot_for_docs(page, "ui-buat-gambar")

    page.locator("#gk-advanced").get_by_text("Pengaturan lanjutan").click()
    type_number(page, "#gk-width input", "4000")
    button.click()
    toast = page.get_by_test_id("toast-body").filter(has_text="lebar 4000 di luar batas (64-2048)")
    expect(toast).to_be_visible()
    assert in_viewport(toast)
    status = page.locator("#gk-status")
    expect(status).to_contain_text("lebar 4000 di luar batas (64-2048)")
    assert in_viewport(status), "the error must be next to the button the user just clicked"
    expect(page.locator("#gk-status-out")).to_contain_text("lebar 4000 di luar batas")
    assert "width 4000" not in status.inner_text()  # Indonesian page, Indonesian error

    field = page.locator("#gk-width input")  # a size that is no multiple of 8 is moved to one as the user leaves it
    field.click()
    field.press("Control+a")
    field.press_sequentially("70")
    field.press("Tab")
    expect(field).to_have_value("72")
    expect(page.locator("#gk-size-note")).to_contain_text("kelipatan 8")


def test_indonesian_prompt_to_gallery_then_english(page, ui_url: str, ui_settings) -> None:  # page first: no browser, no UI launch
    from PIL import Image

    expect = playwright_api.expect
    page.goto(ui_url)
    expect(page.locator("button#gk-generate")).to_have_text("Gambarkan")
    expect(page.locator("#gk-live")).to_be_hidden()  # no empty preview box pushing the results down
    page.locator("button#gk-generate").click()  # nothing written yet: a readable error, in Indonesian
    expect(page.locator("#gk-status")).to_contain_text("Tulis dulu apa yang ingin digambar")

    page.locator("#gk-prompt textarea").fill("kucing oranye tidur di atas sofa")
    expect(page.locator("#gk-preview textarea")).to_have_value("orange cat sleeping on a sofa", timeout=TIMEOUT_MS)

    page.locator("button#gk-generate").click()
    expect(page.locator("#gk-status")).to_contain_text("Selesai", timeout=TIMEOUT_MS)
    expect(page.locator("#gk-status-out")).to_contain_text("orange cat sleeping on a sofa")
    expect(page.locator("#gk-live")).to_be_hidden()
    image = page.locator("#gk-gallery img").first
    expect(image).to_be_visible()

    # The gallery serves the saved PNG itself: right size, with its A1111 parameters.
    png = page.request.get(image.get_attribute("src")).body()
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG" and picture.size == (64, 64)
    assert "Original prompt: kucing oranye tidur di atas sofa" in picture.info["parameters"]
    assert len(set(picture.convert("RGB").getdata())) > 10  # an image, not a blank

    image.click()
    parameters = page.locator("#gk-parameters textarea")
    page.wait_for_function("() => document.querySelector('#gk-parameters textarea').value.includes('Steps: 2')")
    assert "Preset: umum" in parameters.input_value()
    seed = int(parameters.input_value().split("Seed: ")[1].split(",")[0])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-id.png"), full_page=True)

    # "Pakai pengaturan ini" puts that image's settings (its seed too) back into the form.
    page.locator("#gk-prompt textarea").fill("")
    page.locator("button#gk-send").click()
    expect(page.locator("#gk-prompt textarea")).to_have_value("kucing oranye tidur di atas sofa")
    page.locator("#gk-advanced").get_by_text("Pengaturan lanjutan").click()
    expect(page.locator("#gk-seed input")).to_have_value(str(seed))

    # A long run shows its steps, a preview and an ETA, and stops when cancelled ...
    type_number(page, "#gk-steps input", str(LONG_STEPS))
    page.locator("button#gk-generate").click()
    expect(page.locator("#gk-status")).to_contain_text("Langkah", timeout=TIMEOUT_MS)
    expect(page.locator("#gk-status progress")).to_be_attached()
    expect(page.locator("#gk-live img")).to_be_visible(timeout=TIMEOUT_MS)  # a preview as the image forms
    page.locator("button#gk-cancel").click()
    expect(page.locator("#gk-status")).to_contain_text("Dibatalkan", timeout=TIMEOUT_MS)
    expect(page.locator("#gk-status-out")).to_contain_text("Dibatalkan")
    expect(page.locator("#gk-live")).to_be_hidden()
    # Cancel, then Gambarkan at once, while the cancelled run is still stopping: the new run is not lost.
    page.locator("button#gk-generate").click()
    expect(page.locator("#gk-status")).to_contain_text("Langkah", timeout=TIMEOUT_MS)
    page.locator("button#gk-cancel").click()
    expect(page.locator("#gk-status")).to_contain_text(re.compile("Membatalkan|Dibatalkan"))
    page.locator("button#gk-generate").click()
    expect(page.locator("#gk-status")).to_contain_text("Selesai", timeout=TIMEOUT_MS)

    # History: a gallery of the four runs (the cancelled ones as grey tiles); click the first run, reuse, delete.
    page.get_by_role("tab", name="Riwayat").click()
    page.locator("button#gk-history-refresh").click()
    tiles = page.locator("#gk-history .thumbnail-item")
    expect(tiles).to_have_count(4)
    expect(page.locator("#gk-history")).to_contain_text("dibatalkan")
    screenshot_for_docs(page, "ui-riwayat")
    tiles.last.click()  # newest first: the last tile is the first run
    expect(page.locator("#gk-history-details textarea")).to_have_value(re.compile(f"Seed: {seed}"))
    page.locator("button#gk-history-reuse").click()
    expect(page.locator("#gk-prompt textarea")).to_be_visible()  # back on the Create tab, the form filled in
    expect(page.locator("#gk-status")).to_contain_text("Pengaturan dari riwayat nomor 1 sudah dimasukkan ke formulir.")
    expect(page.locator("#gk-prompt textarea")).to_have_value("kucing oranye tidur di atas sofa")
    expect(page.locator("#gk-steps input")).to_have_value("0")  # the first run's request (package default) replaces 150
    expect(page.locator("#gk-cfg input")).to_have_value("-1")  # package default shown as -1, not an empty field
    expect(page.locator("#gk-seed input")).to_have_value(str(seed))
    assert len(list(ui_settings.output_dir.rglob(f"00001-{seed}.png"))) == 1  # the first run's image (the last run reused its seed)
    page.get_by_role("tab", name="Riwayat").click()
    tiles.last.click()
    expect(page.locator("#gk-history-details textarea")).to_have_value(re.compile(f"Seed: {seed}"))
    page.locator("button#gk-history-delete").click()
    expect(page.locator("#gk-history-status")).to_contain_text("Riwayat nomor 1 dihapus (1 file).")
    expect(tiles).to_have_count(3)  # the two cancelled runs and the last one
    assert not list(ui_settings.output_dir.rglob(f"00001-{seed}.png"))
    page.get_by_role("tab", name="Model").click()
    expect(page.locator("#gk-models")).to_contain_text("umum")
    expect(page.locator("#gk-models")).to_contain_text("cocok untuk")
    expect(page.locator("#gk-models-disk")).to_contain_text("Ruang disk yang dipakai paket")
    page.get_by_role("tab", name="Buat gambar").click()

    page.locator("#gk-language label", has_text="English").click()
    expect(page.locator("button#gk-generate")).to_have_text("Generate")
    expect(page.locator("#gk-prompt label, #gk-prompt span").first).to_contain_text("Prompt")
    expect(page.locator("#gk-negative")).to_contain_text("Negative prompt")
    page.get_by_role("tab", name="History").click()  # the history follows the language too
    expect(page.locator("#gk-history")).to_contain_text("cancelled")
    page.get_by_role("tab", name="Create").click()
    type_number(page, "#gk-width input", "4000")  # out of range: refused, explained in English
    page.locator("button#gk-generate").click()
    expect(page.locator("#gk-status")).to_contain_text("width 4000 is out of range (64-2048)")
    page.screenshot(path=str(ARTIFACTS / "ui-en.png"), full_page=True)
