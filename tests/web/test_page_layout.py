"""The page as a newcomer reads it, in headless Chromium at desktop (1280 px) and phone (390 px)
width: no sideways scrolling (a passage open too), a command as code with a copy button, a
procedure as a numbered list, a quote labelled as a quote, one question at a time, and the
admin tables within the page. KBQA_SCREENSHOTS=docs saves the README's screenshots."""

import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT
from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.serve import create_app
from kbqa.settings import Settings
from kbqa.types import Answer, Citation, Evidence
from support import Server
from web.test_browser import SHOTS, wait
from web.test_browser import browser as browser  # the fixture

# Headless Chromium at two widths: left out of `make check`.
pytestmark = pytest.mark.slow

STEPS = "How do I rotate the staging database password?"
COMMAND = "vault write -f database/rotate-role/staging-app"
WIDTHS = {"desktop": 1280, "phone": 390}


class Stepwise:
    """The real core, answering by pointing at whole lines of the passages that hold the given
    needles (as the pointer path quotes units), slowly enough to ask again while it streams."""

    def __init__(self, core, needles: list[str], pause: float = 0.0):
        self.core, self.needles, self.pause = core, needles, pause
        self.asked: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self.core, name)

    def ask_stream(self, question: str, **kwargs) -> Iterator[Evidence | Answer]:
        self.asked.append(question)
        answer = self.core.ask(question, **kwargs)
        citations: dict[str, Citation] = {}
        evidence = []
        for needle in self.needles:
            hit = next(h for h in answer.hits if needle in h.text)
            line = next(x for x in hit.text.splitlines() if needle in x).strip()
            cited = citations.setdefault(hit.uri, Citation(len(citations) + 1, hit))
            evidence.append(Evidence(cited.n, line, ""))
            time.sleep(self.pause)
            yield evidence[-1]
        yield replace(
            answer,
            text=" ".join(f"{e.text} [{e.n}]" for e in evidence),
            citations=tuple(citations.values()),
            mode="pointed",
            abstained=False,
            evidence=tuple(evidence),
            reason="",
        )


@pytest.fixture(scope="module")
def handbook(tmp_path_factory) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("page")
    for name in ("runbooks/databases.md", "architecture/overview.md"):
        (root / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "examples/handbook" / name, root / "docs" / name)
    settings = Settings(
        home=root / "home", min_hit_score=0.0, min_confidence=0.0, answer_style="free"
    )
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    kb.ingest([root / "docs"])
    return kb


def at_width(driver, width: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def sideways(driver) -> int:
    """How many pixels the page scrolls sideways (0: it fits)."""
    return driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def ask(driver, question: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = len(driver.find_elements(By.CSS_SELECTOR, ".turn .feedback"))
    driver.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn .feedback")) > before)


@pytest.mark.parametrize("device", WIDTHS)
def test_a_procedure_reads_as_steps_with_copyable_commands_at_any_width(browser, handbook, device):
    from selenium.webdriver.common.by import By

    steps = Stepwise(handbook, ["Log in to Vault", "Rotate the password:", "Check it worked"])
    with Server(create_app(steps)) as server:
        at_width(browser, WIDTHS[device])
        browser.get(server.url + "/")
        ask(browser, STEPS)
        turn = browser.find_element(By.CSS_SELECTOR, ".turn")
        # A quote says it is one.
        assert (
            turn.find_element(By.CSS_SELECTOR, ".answer .lead").text == "Quoted from the sources:"
        )
        quotes = turn.find_elements(By.CSS_SELECTOR, ".evidence figure.quote")
        assert quotes[0].find_element(By.TAG_NAME, "figcaption").text.startswith("Quote from [1]")
        # Each step a numbered item of its own list, its command as code, with a copy button.
        starts = [q.find_element(By.CSS_SELECTOR, "ol").get_attribute("start") for q in quotes]
        assert starts == ["2", "3", "4"]
        codes = [c.text for c in turn.find_elements(By.CSS_SELECTOR, ".evidence code")]
        assert COMMAND in codes  # the whole command, no prose inside the backticks
        command = next(c for c in turn.find_elements(By.CSS_SELECTOR, ".evidence code"))
        copy = command.find_element(By.XPATH, "following-sibling::button[1]")
        assert "copy" in copy.get_attribute("class")
        copy.click()
        wait(browser, lambda d: copy.text in ("Copied", "Select and copy"), 5)
        assert sideways(browser) == 0
        # The passage keeps its formatting: the six steps as a list, commands as code.
        quotes[0].find_element(By.CSS_SELECTOR, "button.cite").click()
        passage = turn.find_element(By.CSS_SELECTOR, ".passage")
        assert len(passage.find_elements(By.CSS_SELECTOR, "ol > li")) == 6
        marked = passage.find_elements(By.CSS_SELECTOR, "li.unit")  # the quoted step, lit
        assert marked and "Log in to Vault" in marked[0].text
        assert any(COMMAND in c.text for c in passage.find_elements(By.TAG_NAME, "code"))
        assert sideways(browser) == 0, "the page scrolls sideways with a passage open"
        if SHOTS:
            browser.save_screenshot(str(Path(SHOTS) / f"page-{device}.png"))


def test_a_table_row_and_a_follow_up_on_the_page(browser, handbook):
    from selenium.webdriver.common.by import By

    browser.get("about:blank")
    with Server(create_app(handbook)) as server:
        at_width(browser, WIDTHS["phone"])
        browser.get(server.url + "/")
        ask(browser, "what port is route-planner listening on?")
        ask(browser, "and tracker?")
        turns = browser.find_elements(By.CSS_SELECTOR, ".turn")
        searched = turns[1].find_element(By.CSS_SELECTOR, ".searched").text
        assert searched.startswith("searched for: and tracker? (") and "route-planner" in searched
        assert sideways(browser) == 0
        # The pinned question box hides no part of the new answer: its buttons are above it.
        buttons = turns[1].find_element(By.CSS_SELECTOR, ".feedback").rect
        box = browser.find_element(By.ID, "ask").rect
        assert buttons["y"] + buttons["height"] <= box["y"] + 1, (buttons, box)


def test_no_second_question_while_one_streams(browser, handbook):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    slow = Stepwise(handbook, ["Log in to Vault", "Rotate the password:"], pause=1.0)
    with Server(create_app(slow)) as server:
        browser.get(server.url + "/")
        box = browser.find_element(By.ID, "question")
        box.send_keys(STEPS, Keys.ENTER)
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn"))
        box.send_keys("and how do I check it worked?", Keys.ENTER)  # while the first streams
        assert browser.find_element(By.ID, "send").get_attribute("disabled")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .feedback"))
        time.sleep(0.5)
        assert len(browser.find_elements(By.CSS_SELECTOR, ".turn")) == 1
        assert slow.asked == [STEPS]
        assert box.get_attribute("value") == "and how do I check it worked?"  # kept, not lost


@pytest.mark.parametrize("device", WIDTHS)
def test_the_admin_tables_fit(browser, handbook, device):
    from selenium.webdriver.common.by import By

    with Server(create_app(handbook)) as server:
        at_width(browser, WIDTHS[device])
        browser.get(server.url + "/admin")
        assert sideways(browser) == 0
        if device == "desktop":  # at desktop width no table scrolls inside its box either
            for box in browser.find_elements(By.CSS_SELECTOR, ".scroll"):
                assert (
                    browser.execute_script(
                        "return arguments[0].scrollWidth - arguments[0].clientWidth", box
                    )
                    <= 1
                )
        # A one-word heading is never broken inside the word ("Chun / ks", page walkthrough).
        broken = browser.execute_script(
            """return [...document.querySelectorAll('th')].filter((th) => {
                 const range = document.createRange(); range.selectNodeContents(th);
                 return !th.textContent.trim().includes(' ') && range.getClientRects().length > 1;
               }).map((th) => th.textContent.trim());"""
        )
        assert broken == []
        # A path (a run's root, a failed file) keeps a readable width; at 390 px its table
        # scrolls inside its box instead (the replay: "Last runs" paths broke every 5 letters).
        narrowest = browser.execute_script(
            """const cells = [...document.querySelectorAll('td')].filter(
                 (td) => td.querySelector(':scope > code'));
               return cells.length ? Math.min(...cells.map((td) => td.clientWidth)) : null;"""
        )
        assert narrowest is not None and narrowest >= 180


def test_a_reload_keeps_the_conversation_in_the_tab(browser, handbook):
    from selenium.webdriver.common.by import By

    shown = "[...document.querySelectorAll('.turn')].map((t) => t.innerText)"
    with Server(create_app(handbook)) as server:
        browser.get(server.url + "/")
        ask(browser, "what port is route-planner listening on?")
        before = browser.execute_script(f"return {shown}")
        browser.refresh()
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .feedback"))
        assert browser.execute_script(f"return {shown}") == before  # drawn as it was
        assert not browser.find_element(By.ID, "empty").is_displayed()
        assert browser.execute_script("return localStorage.getItem('kbqa_conversation')") is None
        turn = browser.find_element(By.CSS_SELECTOR, ".turn")
        turn.find_element(By.CSS_SELECTOR, "button.cite").click()  # its passage opens
        assert "route-planner" in turn.find_element(By.CSS_SELECTOR, ".passage").text
        # The follow-up after the reload is sent with the conversation before it.
        ask(browser, "and tracker?")
        searched = browser.find_elements(By.CSS_SELECTOR, ".turn")[1].find_element(
            By.CSS_SELECTOR, ".searched"
        )
        assert searched.text.startswith("searched for: and tracker? (")
        assert "route-planner" in searched.text
        # Only the last ten turns are kept, a turn that is not one is left out, and a stored
        # value that does not parse is ignored.
        stored = "return JSON.parse(sessionStorage.getItem('kbqa_conversation')).length"
        browser.execute_script(
            """const kept = JSON.parse(sessionStorage.getItem('kbqa_conversation'));
               sessionStorage.setItem('kbqa_conversation',
                 JSON.stringify(Array(9).fill(kept[0]).concat([{question: 1}, null, kept[1]])));"""
        )
        browser.refresh()
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .feedback"))
        assert len(browser.find_elements(By.CSS_SELECTOR, ".turn")) == 12 - 2 - 2
        ask(browser, "and billing?")
        ask(browser, "and dispatch?")
        ask(browser, "and tracker again?")
        assert len(browser.find_elements(By.CSS_SELECTOR, ".turn")) == 11
        assert browser.execute_script(stored) == 10
        for broken in ("{not json", '{"question": "x"}', "[[1, 2]]"):
            browser.execute_script(f"sessionStorage.setItem('kbqa_conversation', '{broken}')")
            browser.refresh()
            assert browser.find_element(By.ID, "empty").is_displayed()
            assert not browser.find_elements(By.CSS_SELECTOR, ".turn")
        ask(browser, "what port is route-planner listening on?")  # the page still works
        # "New conversation" forgets it, a reload too.
        browser.find_element(By.ID, "new").click()
        browser.refresh()
        assert browser.find_element(By.ID, "empty").is_displayed()
        assert not browser.find_elements(By.CSS_SELECTOR, ".turn")
        assert browser.execute_script("return sessionStorage.getItem('kbqa_conversation')") in (
            None,
            "[]",
        )


def test_a_file_source_opens_at_the_cited_passage(browser, tmp_path):
    from urllib.parse import unquote

    from selenium.webdriver.common.by import By

    # A long file whose cited section is far below its top.
    filler = "".join(
        f"## Topic {i}\n\n"
        + f"Paragraph {i} of the filler, about office plants and kettles and desks.\n" * 4
        + "\n"
        for i in range(40)
    )
    gateway = (
        "## Restarting the gateway\n\n"
        "1. Drain the gateway with `gwctl drain --all` before anything else.\n"
        "2. Restart the gateway pods, one at a time.\n"
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ops.md").write_text("# Operations\n\n" + filler + gateway + filler)
    settings = Settings(home=tmp_path / "home", min_hit_score=0.0, min_confidence=0.0)
    kb = KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    kb.ingest([tmp_path / "docs"])
    with Server(create_app(kb)) as server:
        browser.get(server.url + "/")
        ask(browser, "how do I restart the gateway pods?")
        link = browser.find_element(By.CSS_SELECTOR, ".turn .sources li a")
        href = link.get_attribute("href")
        path, _, fragment = href.partition("#:~:")
        assert path.endswith("/files" + str(tmp_path / "docs" / "ops.md"))
        assert [unquote(d) for d in fragment.split("&")] == [
            "text=Drain the gateway with",  # the words before the code, as the file has them
            "text=Restarting the gateway",
        ]
        link.click()
        browser.switch_to.window(browser.window_handles[-1])
        wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
        wait(browser, lambda d: d.execute_script("return window.scrollY") > 0, 5)
        top = browser.execute_script("return window.scrollY")
        assert top > 40 * 6 * 10, top  # past the filler above it (6 lines a topic)


def test_the_feedback_buttons_show_icons_not_emoji(browser, handbook):
    from selenium.webdriver.common.by import By

    with Server(create_app(handbook)) as server:
        browser.get(server.url + "/")
        ask(browser, "what port is route-planner listening on?")
        buttons = browser.find_elements(By.CSS_SELECTOR, ".turn button.rate")
        assert [b.get_attribute("aria-label") for b in buttons] == ["Helpful", "Not helpful"]
        # No emoji (an empty box without an emoji font): a drawn icon and the words.
        assert [b.text for b in buttons] == ["Helpful", "Not helpful"]
        for button in buttons:
            icon = button.find_element(By.CSS_SELECTOR, "svg.icon")
            assert icon.get_attribute("aria-hidden") == "true"
            assert icon.rect["width"] > 8 and icon.rect["height"] > 8
        buttons[1].click()
        wait(browser, lambda d: "saved" in d.find_element(By.CSS_SELECTOR, ".thanks").text)
        assert "chosen" in buttons[1].get_attribute("class")
        # A rated answer stays rated after a reload.
        browser.refresh()
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".turn .feedback"))
        again = browser.find_elements(By.CSS_SELECTOR, ".turn button.rate")
        assert all(b.get_attribute("disabled") for b in again)
        assert "chosen" in again[1].get_attribute("class")


def test_the_admin_page_says_why_it_opened_without_a_token(browser, handbook):
    from selenium.webdriver.common.by import By

    def note() -> str:
        browser.get(server.url + "/admin")
        found = browser.find_elements(By.CSS_SELECTOR, "p.note.local")
        return found[0].text if found else ""

    secret, _ = handbook.create_token("admin-note", admin=True)
    settings = handbook.settings
    with Server(create_app(handbook)) as server:
        try:
            said = note()  # from this machine, no token
            assert "this request comes from this machine" in said
            assert "allow_loopback_without_token" in said and "admin token" in said
            browser.add_cookie({"name": "kbqa_token", "value": secret, "path": "/"})
            assert note() == ""  # signed in with a token
            handbook.settings = settings.replace(allow_loopback_without_token=False)
            assert note() == ""
            assert "Knowledge base" in browser.find_element(By.TAG_NAME, "h1").text
        finally:
            handbook.settings = settings
