"""The HTML report as a reader sees it: opened in headless Chromium, after its script ran.

Needs Debian's `chromium` and `chromium-driver` (and the `selenium` package of the dev
extra). Without them the test is skipped — unless PROMPTYARD_REQUIRE_BROWSER is set (CI
sets it), in which case a missing browser fails loudly instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.evals import API_KEY_ENV, BASE_URL_ENV
from support.gate import WORDS, echo_spec, gate_repo
from support.openai_server import OpenAIServer

REQUIRE_ENV = "PROMPTYARD_REQUIRE_BROWSER"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)
PAYLOAD = "<script>window.__pwned = 1; document.title = 'pwned'</script> & <b>not bold</b>"


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (
            name if os.path.isabs(name) and os.path.exists(name) else None
        )
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium = _find("chromium", "/usr/bin/chromium", "chromium-browser")
    driver_path = _find("chromedriver", "/usr/bin/chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if chromium is None or driver_path is None or webdriver is None:
        missing = (
            "chromium"
            if chromium is None
            else "chromedriver"
            if driver_path is None
            else "selenium"
        )
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(
                f"{REQUIRE_ENV} is set but {missing} is missing: "
                "apt-get install -y chromium chromium-driver; pip install -e '.[dev]'"
            )
        pytest.skip(f"{missing} is not installed (set {REQUIRE_ENV} to make this an error)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1280,2000")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _html_report(tmp_path: Path, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real check: `echo` fixes `refund` but breaks `invoice` with hostile output;
    `steady` changes wording only (nothing to see when filtering to regressions)."""
    monkeypatch.setenv(BASE_URL_ENV, server.base_url)
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    repo = gate_repo(tmp_path / "repo")
    broken_base = "{% if 'refund' in text %}[[reply:nothing]]{% endif %}{{ text }}"
    repo.write("prompts/echo.yaml", echo_spec(user=broken_base))
    repo.write("prompts/steady.yaml", echo_spec("steady", system="Be brief."))
    repo.commit("base with a broken refund case")
    repo.git("branch", "-f", "base")
    hostile = "{% if 'invoice' in text %}[[reply:" + PAYLOAD + "]]{% endif %}{{ text }}"
    repo.write("prompts/echo.yaml", echo_spec(version="1.0.1", user=hostile))
    repo.write("prompts/steady.yaml", echo_spec("steady", version="1.0.1", system="Be short."))
    page = tmp_path / "report.html"
    result = repo.cli("check", "--base", "base", "--html", str(page))
    assert result.exit_code == 0, result.stdout + result.stderr  # one flip each way: 0 points
    return page


def test_html_report_in_chromium(
    browser: Any, tmp_path: Path, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By

    page = _html_report(tmp_path, openai_server, monkeypatch)
    browser.get(page.as_uri())
    body = browser.find_element(By.TAG_NAME, "body")

    # what a reader sees first: the decision, the scope, the summary
    assert browser.find_element(By.ID, "decision").text == "promptyard check: passed"
    assert browser.title == "promptyard check: passed"
    summary = browser.find_element(By.ID, "summary").text
    assert "echo" in summary and "steady" in summary
    assert "95.0% → 95.0% (+0.0 pts, p 1.000)" in summary

    # hostile output is shown as text and never runs
    assert browser.execute_script("return window.__pwned") is None
    regression = browser.find_element(By.CSS_SELECTOR, '.case[data-case="invoice-01"]')
    improvement = browser.find_element(By.CSS_SELECTOR, '.case[data-case="refund-01"]')
    assert PAYLOAD in regression.text
    assert "pass → fail" in regression.text and "fail → pass" in improvement.text
    assert not browser.find_elements(
        By.CSS_SELECTOR, ".case b:not(:first-child)"
    )  # no <b> injected
    inserted = [e.text for e in regression.find_elements(By.TAG_NAME, "ins")]
    deleted = [e.text for e in regression.find_elements(By.TAG_NAME, "del")]
    assert any("<script>" in t for t in inserted)
    assert any("Question about my invoice" in t for t in deleted)

    # every paired case is in the report (the Markdown footer promises it): the flips
    # first, then changed answers, the rest collapsed until opened
    echo_cases = browser.find_elements(By.CSS_SELECTOR, "#p-echo .case")
    ids = [c.get_attribute("data-case") for c in echo_cases]
    assert sorted(ids) == sorted(f"{word}-01" for word in WORDS)
    assert set(ids[:2]) == {"invoice-01", "refund-01"}
    same = browser.find_element(By.CSS_SELECTOR, "#p-echo details.paired.same")
    assert same.get_attribute("open") is None and not echo_cases[-1].is_displayed()
    assert f"Same answer and verdict ({len(WORDS) - 2})" in same.text
    same.find_element(By.TAG_NAME, "summary").click()
    assert echo_cases[-1].is_displayed()
    assert "Question about my" in echo_cases[-1].text  # its answer, side by side
    same.find_element(By.TAG_NAME, "summary").click()

    # a chart of each metric's delta with its interval
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 2 and all(c.is_displayed() for c in charts)
    rows = charts[0].find_elements(By.CSS_SELECTOR, "g.metric-row")
    assert "pass rate" in rows[0].text and "+0.0 pts" in rows[0].text

    # nothing was fetched from anywhere
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    # the filter hides what did not get worse
    steady = browser.find_element(By.ID, "p-steady")
    assert steady.is_displayed() and improvement.is_displayed()
    browser.find_element(By.ID, "only-regressions").click()
    assert not steady.is_displayed()
    assert not improvement.is_displayed()
    assert regression.is_displayed()
    assert browser.find_element(By.ID, "p-echo").is_displayed()
    assert "Show regressions only" in body.text
    browser.find_element(By.ID, "only-regressions").click()
    assert steady.is_displayed() and improvement.is_displayed()
