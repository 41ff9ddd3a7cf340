"""The sync schedule inside `kbqa serve` (serve/schedule.py) and the admin page's connected
sources: each source due on its own interval, never two syncs of one source at once, the last
sync's counts and failures with reasons shown, and "sync now" working in a real browser."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from kbqa.app import KnowledgeBase
from kbqa.assistant.generator import EchoGenerator
from kbqa.ingest.connectors.config import SourceConfig
from kbqa.retrieval.embedder import HashEmbedder
from kbqa.serve import create_app
from kbqa.serve.schedule import SyncScheduler
from kbqa.settings import Settings
from support import Server

from .mock_jira import MockIssue, MockJira, adf

LOCAL = ("127.0.0.1", 50000)


@pytest.fixture
def jira():
    with MockJira() as server:
        server.issues = {
            "OPS-1": MockIssue("OPS", "Disk full", adf("The runners ran out of disk.")),
            "OPS-2": MockIssue("OPS", "TLS", adf("Certbot renews the certificate.")),
        }
        yield server


@pytest.fixture
def core(tmp_path, jira):
    def source(name, minutes, **options):
        return SourceConfig(
            name=name,
            kind="jira",
            url=jira.url,
            scope=("OPS",),
            schedule_minutes=minutes,
            token=jira.token,
            user=jira.user,
            options=options,
        )

    settings = Settings(
        home=tmp_path / "home",
        answer_style="free",
        sources=(source("tracker", 5), source("hourly", 60), source("manual", 0)),
    )
    return KnowledgeBase(settings, embedder=HashEmbedder(), generator=EchoGenerator())


class Clock:
    def __init__(self):
        self.at = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)

    def __call__(self):
        return self.at


def test_each_source_is_due_on_its_own_interval(core, monkeypatch):
    clock = Clock()
    scheduler = SyncScheduler(core, now=clock)
    last, synced = {}, []

    def fake_sync(names):
        for name in names:
            last[name] = clock.at
            synced.append(name)

    def states(store, settings):
        return [{"name": c.name, "last_started_at": last.get(c.name)} for c in settings.sources]

    monkeypatch.setattr(core, "sync_sources", fake_sync)
    monkeypatch.setattr("kbqa.ingest.connect.source_states", states)
    assert scheduler.run_due(wait=True) == ["tracker", "hourly"]  # never synced: due now
    assert scheduler.run_due(wait=True) == []
    clock.at += timedelta(minutes=6)
    assert scheduler.run_due(wait=True) == ["tracker"]
    clock.at += timedelta(minutes=60)
    assert scheduler.run_due(wait=True) == ["tracker", "hourly"]
    assert "manual" not in synced


def test_the_real_schedule_reads_the_stored_last_sync(core, jira):
    clock = Clock()
    scheduler = SyncScheduler(core, now=clock)
    clock.at = datetime.now(UTC)
    assert set(scheduler.run_due(wait=True)) == {"tracker", "hourly"}
    assert scheduler.run_due(wait=True) == []  # both just synced
    states = {s["name"]: s for s in scheduler.states()}
    assert states["tracker"]["stats"]["added"] == 2 and states["hourly"]["status"] == "ok"
    assert states["manual"]["next_at"] is None and states["manual"]["status"] == "never"
    clock.at += timedelta(minutes=6)
    assert scheduler.run_due(wait=True) == ["tracker"]


def test_never_two_syncs_of_one_source_at_once(core, monkeypatch):
    inside, most, release = [0], [0], threading.Event()
    guard = threading.Lock()

    def slow(names):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        release.wait(5)
        with guard:
            inside[0] -= 1

    monkeypatch.setattr(core, "sync_sources", slow)
    scheduler = SyncScheduler(core)
    assert scheduler.sync_now("tracker") is True
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(scheduler.sync_now("tracker")))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [False] * 5 and scheduler.running("tracker")
    assert "tracker" not in scheduler.run_due()  # the schedule is refused too
    assert scheduler.sync_now("hourly") is True  # another source is not held up
    release.set()
    scheduler.stop()
    assert most[0] == 2 and not scheduler.running("tracker")  # tracker + hourly, never 2 trackers
    assert scheduler.sync_now("tracker") is True
    scheduler.stop()


def test_the_admin_page_shows_each_source_and_syncs_one_now(core, jira):
    client = TestClient(create_app(core), base_url="http://127.0.0.1:8080", client=LOCAL)
    page = client.get("/admin").text
    assert "Connected sources" in page and "never" in page and "manual" in page
    jira.fail(r"/issue/OPS-2$", 404, times=10, body={"errorMessages": ["Issue does not exist"]})
    response = client.post("/admin/sources/tracker/sync", follow_redirects=False)
    assert response.status_code == 303
    client.app.state.syncs.stop()
    page = client.get("/admin").text
    assert "2 listed, 1 added" in page
    assert "tracker: OPS-2: TLS" in page and "HTTP 404: Issue does not exist" in page
    foreign = client.post("/admin/sources/tracker/sync", headers={"Origin": "http://evil.test"})
    assert foreign.status_code == 403
    assert client.post("/admin/sources/nope/sync").status_code == 404


def test_sync_now_in_a_real_browser(core, jira):
    from .conftest import uris

    webdriver = pytest.importorskip("selenium.webdriver")
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no headless browser: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = Options()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    app = create_app(core)
    try:
        with Server(app) as server:
            driver.get(server.url + "/admin")
            row = driver.find_element(By.CSS_SELECTOR, 'tr[data-source="tracker"]')
            assert "never" in row.find_element(By.CSS_SELECTOR, ".status").text
            row.find_element(By.TAG_NAME, "button").click()
            deadline = time.monotonic() + 30
            while app.state.syncs.running("tracker") or not uris(core):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            driver.get(server.url + "/admin")
            row = driver.find_element(By.CSS_SELECTOR, 'tr[data-source="tracker"]')
            assert ": ok" in row.find_element(By.CSS_SELECTOR, ".status").text
            assert "2 listed, 2 added" in row.text
    finally:
        driver.quit()
        app.state.syncs.stop()
    assert uris(core) == {"jira:tracker/OPS-1", "jira:tracker/OPS-2"}
