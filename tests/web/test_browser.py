"""The page in a real headless Chromium (Debian's chromium and chromium-driver, via Selenium):
ask, see the cited answer, open a citation, rate it, and see a failed file on the admin page;
a pointed answer's quoted evidence, highlighted in its passage."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from kbqa.store import FeedbackRow

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
    reason="no headless browser: apt-get install chromium chromium-driver",
)
# Set KBQA_SCREENSHOTS=docs to refresh the README's screenshots.
SHOTS = os.environ.get("KBQA_SCREENSHOTS", "")


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kbqa-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1000,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, seconds: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def test_ask_cite_rate_and_admin_in_a_real_browser(browser, server, core):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/")
    box = browser.find_element(By.ID, "question")
    box.send_keys("when do the larkdb backups run nightly?", Keys.ENTER)  # Enter sends
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .sources li"))
    answer = browser.find_element(By.CSS_SELECTOR, ".turn .answer").text
    assert "02:00 UTC" in answer and "[1]" in answer
    source = browser.find_element(By.CSS_SELECTOR, ".turn .sources li").text
    assert source.startswith("[1] Database runbook › Backups") and "today" in source

    cite = browser.find_element(By.CSS_SELECTOR, "button.cite")
    cite.click()
    passage = browser.find_element(By.CSS_SELECTOR, ".turn .passage")
    assert passage.is_displayed() and "kept for 35 days" in passage.text
    assert cite.get_attribute("aria-expanded") == "true"

    # A follow-up in the same conversation, then 👍 on the first answer.
    box.send_keys("how long are the backups kept?", Keys.ENTER)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn .feedback")) == 2)
    if SHOTS:
        browser.save_screenshot(str(Path(SHOTS) / "serve-page.png"))
    browser.find_element(By.CSS_SELECTOR, ".turn button.rate[aria-label='Helpful']").click()
    wait(browser, lambda d: "saved" in d.find_element(By.CSS_SELECTOR, ".thanks").text)
    with core.store.session() as s:
        row = s.scalars(select(FeedbackRow)).one()
    assert row.value == 1 and row.question == "when do the larkdb backups run nightly?"
    assert "02:00 UTC" in row.answer and row.citations[0]["uri"].endswith("db.md")

    browser.get(server.url + "/admin")
    failed = browser.find_element(By.CSS_SELECTOR, "table.failed").text
    assert "broken.pdf" in failed and "not a PDF file" in failed
    if SHOTS:
        browser.save_screenshot(str(Path(SHOTS) / "serve-admin.png"))


def test_abstention_explains_itself_in_the_browser(browser, server, core):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    core.settings = core.settings.replace(min_hit_score=0.99)
    browser.get(server.url + "/")
    browser.find_element(By.ID, "question").send_keys("zebra giraffe safari?", Keys.ENTER)
    why = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn details.why"))[0]
    assert "Why no answer?" in why.text and "close enough" in why.text  # plain words
    assert "kbqa status" in why.text and "min_hit_score" not in why.text
    said = why.find_element(By.CSS_SELECTOR, "p")  # a command as code, no backticks
    assert said.find_element(By.TAG_NAME, "code").text == "kbqa status" and "`" not in said.text


def test_a_pointed_answer_quotes_its_units_and_highlights_them_in_the_passage(browser, core):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from kbqa.serve import create_app
    from web.conftest import Server
    from web.pointing import Pointing

    pointing = Pointing(core, [("port 7300", "port 7300"), ("billing service", "")])
    with Server(create_app(pointing)) as server:
        browser.get(server.url + "/")
        question = "which port does the tracker service listen on?"
        browser.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .sources li"))
        # The copied words are marked inside their quote only, never as a line of their own.
        lead = browser.find_element(By.CSS_SELECTOR, ".turn .answer .lead").text
        quotes = browser.find_elements(By.CSS_SELECTOR, ".turn .evidence figure.quote")
        assert lead == "Quoted from the sources:" and len(quotes) == 2
        assert quotes[0].find_element(By.TAG_NAME, "blockquote").text == (
            "The tracker service listens on port 7300."
        )
        assert quotes[0].find_element(By.CSS_SELECTOR, "strong.span").text == "port 7300"
        assert quotes[0].find_element(By.TAG_NAME, "figcaption").text == "Quote from [1] Services"
        quotes[0].find_element(By.CSS_SELECTOR, "button.cite").click()
        passage = browser.find_element(By.CSS_SELECTOR, ".turn .passage")
        units = [m.text for m in passage.find_elements(By.CSS_SELECTOR, "mark.unit")]
        assert units == [
            "The tracker service listens on port 7300.",
            "The billing service listens on 7400.",
        ]
        assert passage.find_element(By.CSS_SELECTOR, "mark.unit strong.span").text == "port 7300"
        if SHOTS:
            browser.save_screenshot(str(Path(SHOTS) / "serve-evidence.png"))


def test_code_in_a_thread_title_is_shown_as_code_in_a_source_label(browser, server, core):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    core.settings = core.settings.replace(min_hit_score=0.99)  # its closest sources, labelled
    browser.get(server.url + "/")
    question = "Who owns the eta-recompute cron job? It failed twice on staging"
    browser.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn details.why .sources li"))
    labels = browser.find_elements(By.CSS_SELECTOR, ".turn details.why .sources li")
    thread = next(li for li in labels if "eta-recompute" in li.text)
    assert thread.find_element(By.TAG_NAME, "code").text == "eta-recompute"
    assert "`" not in thread.text


def test_a_citations_tooltip_shows_a_thread_title_without_backticks(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/")
    question = "Who owns the eta-recompute cron job? It failed twice on staging"
    browser.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .sources li"))
    cites = browser.find_elements(By.CSS_SELECTOR, "button.cite")
    titles = [b.get_attribute("title") for b in cites]
    thread = [t for t in titles if "eta-recompute" in t]
    assert thread and not any("`" in t for t in thread)
