"""The browser page at /ui, in a real headless chromium (Debian's, through chromedriver), against the
real running service: it lists the models, classifies an uploaded image and shows the same top
classes as the SDK; a bad file shows the server's message."""

from __future__ import annotations

import shutil

import httpx
import pytest

from imgclf_client import HttpClient
from tests.serving.helpers import tiny_imagenet_jpegs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium and chromedriver (make test installs them)"
    ),
]
TASK1 = "tinyimagenet-cnn"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def open_page(browser, server):
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(f"{server.http}/ui")
    WebDriverWait(browser, 20).until(lambda b: len(Select(b.find_element("id", "model")).options) == 2)
    return Select(browser.find_element("id", "model"))


def test_the_page_shows_the_same_top_classes_as_the_sdk(server, browser, real_data_dir, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    image = tmp_path / "image.jpg"
    image.write_bytes(tiny_imagenet_jpegs(real_data_dir, 1)[0])
    with HttpClient(server.http) as client:
        expected = client.classify(str(image), model=TASK1, top_k=3)[0]

    models = open_page(browser, server)
    assert [o.get_attribute("value") for o in models.options] == ["digits-cnn", TASK1]
    assert models.first_selected_option.get_attribute("value") == "digits-cnn"  # The server's default.
    models.select_by_value(TASK1)
    top_k = browser.find_element("id", "top-k")
    top_k.clear()
    top_k.send_keys("3")
    browser.find_element("id", "file").send_keys(str(image))
    WebDriverWait(browser, 30).until(lambda b: b.find_elements("css selector", "#results .result"))
    rows = browser.find_elements("css selector", "#results .result")
    shown = [
        (
            int(r.get_attribute("data-class-index")),
            r.find_element("css selector", ".label").text,
            r.find_element("css selector", ".name").text,
            r.find_element("css selector", ".score").text,
        )
        for r in rows
    ]
    assert shown == [(c.class_index, c.label, c.name, f"{100 * c.score:.2f}%") for c in expected]
    assert browser.find_element("id", "status").text == f"answered by {TASK1} version 1"
    assert browser.find_element("id", "preview").is_displayed()


def test_a_file_that_is_not_an_image_shows_the_servers_message(server, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    open_page(browser, server)
    browser.find_element("id", "file").send_keys(str(notes))
    WebDriverWait(browser, 30).until(lambda b: b.find_element("id", "error").text)
    assert "not an image" in browser.find_element("id", "error").text
    assert not browser.find_elements("css selector", "#results .result")


def test_the_page_is_served_at_ui_and_ui_slash_redirects(server):
    page = httpx.get(f"{server.http}/ui", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and "<title>imgclf" in page.text
    redirected = httpx.get(f"{server.http}/ui/", timeout=10, follow_redirects=True)
    assert redirected.status_code == 200 and str(redirected.url).endswith("/ui")


def test_the_api_docs_render_and_try_an_operation_with_a_token(server, browser):
    """/docs (Swagger UI from BentoML's package, no CDN) renders the OpenAPI document: the classify
    operation is there, and "Authorize" + "Try it out" sends the token and shows the live answer."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.http}/docs")
    wait = WebDriverWait(browser, 30)
    classify = wait.until(lambda b: b.find_element("id", "operations-imgclf-classify"))
    assert "/classify" in classify.text
    browser.find_element("css selector", "button.authorize").click()
    wait.until(lambda b: b.find_element("css selector", ".auth-container input")).send_keys("a-docs-page-token")
    browser.find_element("css selector", ".auth-btn-wrapper button.authorize").click()
    browser.find_element("css selector", ".auth-btn-wrapper button.btn-done").click()
    models = browser.find_element("id", "operations-imgclf-listModels")
    models.find_element("css selector", ".opblock-summary").click()
    wait.until(lambda b: models.find_element("css selector", ".try-out__btn")).click()
    wait.until(lambda b: models.find_element("css selector", "button.execute")).click()
    curl = wait.until(lambda b: models.find_element("css selector", ".curl-command"))
    assert "Authorization: Bearer a-docs-page-token" in curl.text
    status = wait.until(lambda b: models.find_element("css selector", ".live-responses-table tr.response .response-col_status"))
    assert status.text.strip() == "200"
    assert "tinyimagenet-cnn" in models.find_element("css selector", ".live-responses-table tr.response .response-col_description").text


def test_the_page_overlays_the_heatmap_shows_the_card_and_sends_feedback(server, browser, real_data_dir, tmp_path):
    from selenium.webdriver.support.ui import Select, WebDriverWait

    image = tmp_path / "image.jpg"
    image.write_bytes(tiny_imagenet_jpegs(real_data_dir, 2)[1])
    with HttpClient(server.http) as client:
        info = client.model(TASK1)
        explained = client.explain(str(image), model=TASK1)
    models = open_page(browser, server)
    models.select_by_value(TASK1)
    facts = {dd.get_attribute("data-fact"): dd.text for dd in browser.find_elements("css selector", "#card dd")}
    assert facts["classes"] == "200" and facts["validation top-1"].startswith(f"{100 * info.metrics['val_top1']:.1f}%")
    assert "tiny-imagenet" in facts["trained on"] and facts["input"].startswith("32x32 RGB; resize: ") and "bilinear" in facts["input"]
    browser.find_element("id", "file").send_keys(str(image))
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: b.find_element("id", "heatmap").get_attribute("data-cells"))
    canvas = browser.find_element("id", "heatmap")
    assert canvas.get_attribute("data-cells") == "8x8" and canvas.is_displayed()
    painted = browser.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;",
        canvas,
    )
    if explained.informative:  # The hottest cells are tinted over the image; the coldest are not.
        assert 0 < painted < 64 * 64
    assert explained.explained.name in browser.find_element("id", "explain-status").text
    # Wrong? Pick the right class: the image is stored under the picked label.
    label = info.labels[5]
    Select(browser.find_element("id", "correct")).select_by_value(label)
    browser.find_element("id", "send-feedback").click()
    wait.until(lambda b: b.find_element("id", "feedback-status").get_attribute("data-stored"))
    status = browser.find_element("id", "feedback-status")
    stored = status.get_attribute("data-stored")
    assert stored.startswith(f"{label}/") and (server.feedback_root / stored).read_bytes() == image.read_bytes()
    assert "stored as" in status.text
