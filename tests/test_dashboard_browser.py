"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, through
Selenium with explicit paths: Selenium Manager never runs, nothing is downloaded) against
`velox serve` with traffic: no console errors, every panel shows what the JSON and
/metrics endpoints report, and a screenshot is written (its path is printed)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.online.dashboard_service import USERS, Traffic, dashboard_server, metric_value
from tests.online.live_server import LiveServer
from tests.support.redis_server import RedisServer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1440,900",
)  # fmt: skip
SCREENSHOT_COPY = Path(__file__).resolve().parent.parent / "bench" / "out" / "dashboard.png"
PANELS = ("overview", "traffic", "learning", "ope", "extensions")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[LiveServer]:
    """The service with its planted history."""
    with dashboard_server(tmp_path_factory.mktemp("home"), redis_server) as live:
        yield live


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile, its console log kept."""
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def wait_for(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    """Poll `check` until it is true."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


READ_FIELDS = """return Array.from(document.querySelectorAll('[data-field][data-value]'))
    .map((e) => [e.dataset.field, e.dataset.value]);"""
READ_LOADS = """const s = document.getElementById('panel-' + arguments[0]);
return s ? Number(s.dataset.loads || 0) : 0;"""


def shown(driver: webdriver.Chrome) -> dict[str, Any]:
    """Every number on the page (read in one script): data-field -> the JSON value shown."""
    pairs = driver.execute_script(READ_FIELDS)
    return {field: json.loads(value) for field, value in pairs}


def loads(driver: webdriver.Chrome, panel: str) -> int:
    """How many times `panel` has been refreshed successfully (or not)."""
    return int(driver.execute_script(READ_LOADS, panel))


def after_refresh(driver: webdriver.Chrome, panel: str) -> None:
    """Wait until `panel` has refreshed once more from now."""
    before = loads(driver, panel)
    wait_for(lambda: loads(driver, panel) > before, 70.0, f"{panel} to refresh")


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Console entries of level SEVERE since the last call."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry for entry in entries if entry["level"] == "SEVERE"]


def check_traffic(driver: webdriver.Chrome, http: httpx.Client) -> None:
    """The traffic panel shows the JSON of the same sampler tick, number for number."""
    for _ in range(20):
        after_refresh(driver, "traffic")
        page, data = shown(driver), http.get("/dashboard/data/traffic").json()
        if page["traffic.tick"] != data["t"][-1]:
            continue  # a tick closed between the page's fetch and ours: try the next refresh
        for route in data["routes"]:
            for name in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms"):
                assert page[f"traffic.{route['route']}.{name}"] == route[name], name
        for error in data["errors"]:
            assert page[f"traffic.errors.{error['status']}.total"] == error["total"]
            assert page[f"traffic.errors.{error['status']}.per_s"] == error["per_s"]
        assert page["traffic.redis_rtt_ms"] == data["redis_rtt_ms"]
        assert data["routes"][0]["requests"] > 0 and data["errors"][0]["status"] == "422"
        return
    raise AssertionError("never saw the page and the endpoint on the same tick")


def check_still(driver: webdriver.Chrome, http: httpx.Client) -> None:
    """With traffic stopped, every panel shows what the endpoints and /metrics report."""
    for panel in ("traffic", "learning", "overview"):
        after_refresh(driver, panel)
    page = shown(driver)
    metrics = http.get("/metrics").text
    assert page["traffic.predictions_total"] == metric_value(metrics, "velox_predictions_total")
    assert page["traffic.observations_total"] == metric_value(metrics, "velox_observations_total")
    learning = http.get("/dashboard/data/learning").json()
    for name in ("events", "decisions", "reward_mean"):
        assert page[f"learning.{name}"] == learning[name], name
    assert page["learning.explored_share"] == pytest.approx(learning["explored_share"] * 100)
    assert page["learning.users_with_state"] == learning["users_with_state"]["count"] == len(USERS)
    model = http.get("/dashboard/data/overview").json()["models"][0]
    for name in ("model", "version", "kind", "dim", "items", "policy", "lam", "noise_std"):
        assert page[f"overview.{name}"] == model[name], name
    assert page["overview.metrics.rmse"] == model["metrics"]["rmse"]
    assert (page["overview.version"], page["overview.history"]) == (2, "1")


def check_ope(driver: webdriver.Chrome, http: httpx.Client) -> None:
    """The OPE table shows the endpoint's estimates of the served and candidate policies
    (compared where both show the same computation: each is cached for a refresh period)."""
    policies = ["egreedy:0.2", *http.get("/dashboard/data/panels").json()["ope_policies"]]
    for _ in range(3):
        page = shown(driver)
        answers = [http.get("/dashboard/data/ope", params={"policy": p}).json() for p in policies]
        if any(page[f"ope.{a['policy']}.computed_at"] != a["computed_at"] for a in answers):
            after_refresh(driver, "ope")  # a cache expired in between: the page catches up
            continue
        for answer in answers:
            assert answer["rows"] > 0 and page[f"ope.{answer['policy']}.rows"] == answer["rows"]
            for estimate in answer["estimates"]:
                for name in ("value", "ci_low", "ci_high", "ess"):
                    field = f"ope.{answer['policy']}.{estimate['estimator']}.{name}"
                    assert page[field] == estimate[name], field
        return
    raise AssertionError("the page never showed the endpoint's OPE computations")


def test_dashboard_in_chromium(
    browser: webdriver.Chrome, server: LiveServer, tmp_path: Path
) -> None:
    """Load the page before any traffic (every panel says so), then under traffic, and check
    each panel against its endpoint."""
    browser.get(server.url + "/dashboard")
    wait_for(lambda: all(loads(browser, p) > 0 for p in PANELS), what="every panel")
    for panel in ("learning", "ope"):
        text = browser.find_element(By.ID, f"panel-{panel}").text
        assert "No data yet" in text, text
    assert "no data yet" in browser.find_element(By.ID, "panel-traffic").text
    traffic = Traffic(server.url).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
            wait_for(lambda: traffic.rounds > 50, what="traffic")
            browser.get(server.url + "/dashboard")
            wait_for(lambda: all(loads(browser, p) > 0 for p in PANELS), what="every panel")
            states = {p: browser.execute_script(f"return document.getElementById('panel-{p}')"
                                                ".dataset.state") for p in PANELS}  # fmt: skip
            assert states == dict.fromkeys(PANELS, "ok")
            check_traffic(browser, http)
            traffic.stop()
            check_still(browser, http)
            check_ope(browser, http)
            page, extensions = shown(browser), http.get("/dashboard/data/extensions").json()
            for panel in extensions["panels"]:
                for metric in panel["metrics"]:
                    shows = page[f"extensions.{panel['id']}.{metric['label']}"]
                    if metric["unit"] == "s":  # an age: grows between the page's fetch and ours
                        assert 0 <= metric["value"] - shows <= 11.0  # one refresh period
                    else:
                        assert shows == metric["value"], metric
            texts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[data-extension]")]
            assert "Not available" in texts[2] and "fresh" in texts[0] and "added" in texts[1]
            assert browser.find_elements(By.CSS_SELECTOR, "form, button, input, textarea") == []
    finally:
        traffic.stop()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1440, int(height) + 100)  # the whole page, laptop width
    screenshot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(screenshot))
    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    print(f"dashboard screenshot: {screenshot} (copied to {SCREENSHOT_COPY})")
    assert console_errors(browser) == []
