"""The README's two screenshots: the page answering a question over the examples (a citation
opened, a follow-up asked) and the admin page, taken with headless Chromium.

    python tools/screenshots.py [--home DIR]   # DIR: an ingested home (default: a fresh one)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kbqa.app import KnowledgeBase  # noqa: E402
from kbqa.serve import create_app  # noqa: E402
from kbqa.settings import Settings  # noqa: E402
from support import Server  # noqa: E402 - tests/support.py


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="kbqa-shots-"))
    kb = KnowledgeBase(Settings.load(home=home, slack_workspace="larkspur"))
    if not kb.store.counts()["chunks"]:
        kb.ingest([ROOT / "examples" / "handbook", ROOT / "examples" / "slack-export"])
    kb.embedder.embed(["warm up"])

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="kbqa-chromium-")
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,1150",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        with Server(create_app(kb)) as server:
            driver.get(server.url + "/")
            driver.find_element(By.ID, "extractive").click()
            box = driver.find_element(By.ID, "question")
            for n, question in enumerate(
                [
                    "How do I rotate the staging database password?",
                    "what is the CEO's favourite colour?",
                ],
                1,
            ):
                box.send_keys(question, Keys.ENTER)
                WebDriverWait(driver, 120).until(
                    lambda d, n=n: len(d.find_elements(By.CSS_SELECTOR, ".turn .feedback")) == n
                )
            for selector in ("button.cite", "button.rate"):
                button = driver.find_element(By.CSS_SELECTOR, selector)
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
                button.click()
            driver.execute_script("window.scrollTo(0, 0)")
            time.sleep(0.5)
            driver.save_screenshot(str(args.out / "serve-page.png"))
            driver.get(server.url + "/admin")
            driver.save_screenshot(str(args.out / "serve-admin.png"))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"wrote {args.out}/serve-page.png and serve-admin.png")


if __name__ == "__main__":
    main()
