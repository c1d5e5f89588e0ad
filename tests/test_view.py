"""`promptyard view` as a reader uses it: a real viewer process, pages in headless Chromium.

Needs Debian's `chromium` and `chromium-driver` and `selenium` (see test_gate_html.py; the
`browser` fixture skips without them unless PROMPTYARD_REQUIRE_BROWSER is set). Set
PROMPTYARD_SCREENSHOTS=DIR to keep a screenshot of each page there (the README's come from
`PROMPTYARD_SCREENSHOTS=docs .venv/bin/pytest tests/test_view.py`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.evals import EVAL_CONFIG, live_env
from support.gate import cases, echo_spec, regressing_user
from support.openai_server import OpenAIServer
from support.repo import PromptRepo
from test_gate_html import browser  # noqa: F401  (the fixture)

MONEY = ("refund", "invoice", "payment")


@pytest.fixture
def runs_repo(tmp_path: Path, openai_server: OpenAIServer) -> PromptRepo:
    """Two runs of `echo` (20 cases): 1.0.0 passes all; 1.1.0 breaks refund and invoice.
    Cases about money are tagged `money`."""
    repo = PromptRepo.create(tmp_path / "repo", EVAL_CONFIG)
    repo.write(".gitignore", ".promptyard/\n")
    repo.write("prompts/echo.yaml", echo_spec(system="Be brief."))
    golden = [json.loads(line) for line in cases().splitlines()]
    for case in golden:
        if case["expected"] in MONEY:
            case["tags"] = ["money"]
    repo.write("golden/echo.jsonl", "".join(json.dumps(case) + "\n" for case in golden))
    repo.commit("echo 1.0.0")
    env = live_env(openai_server)
    assert repo.run("eval", env=env).exit_code == 0
    user = regressing_user(["refund", "invoice"])
    repo.write("prompts/echo.yaml", echo_spec(version="1.1.0", system="Be brief.", user=user))
    repo.commit("echo 1.1.0")
    assert repo.run("eval", env=env).exit_code == 0  # 90% >= the 80% threshold
    return repo


@pytest.fixture
def viewer(runs_repo: PromptRepo) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptyard.cli", "view", "--port", "0"],
        cwd=runs_repo.root,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        yield match.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _shot(driver: Any, name: str) -> None:
    folder = os.environ.get("PROMPTYARD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"view-{name}.png"))


def _submit(driver: Any, button: str, url_part: str) -> None:
    """Click a form's button and wait for the page it loads."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, button).click()
    WebDriverWait(driver, 10).until(lambda d: url_part in d.current_url)


def _state(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and ".git/" not in str(p)
    }


def test_a_reader_finds_what_changed_between_two_runs(
    browser: Any,  # noqa: F811  (the fixture imported above)
    viewer: str,
    runs_repo: PromptRepo,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = _state(runs_repo.root)
    driver = browser
    driver.get(viewer + "/")
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == ["1.1.0", "1.0.0"]
    assert "90.0%" in rows[0].text and runs_repo.head()[:8] in rows[0].text
    _shot(driver, "runs")

    # the newest run, filtered to its failed cases
    rows[0].find_element(By.TAG_NAME, "a").click()
    assert len(driver.find_elements(By.CSS_SELECTOR, "tr.case-row")) == 20
    driver.find_element(By.ID, "failed").click()
    _submit(driver, "apply", "failed=1")
    failed = driver.find_elements(By.CSS_SELECTOR, "tr.case-row")
    by_id = {r.find_element(By.TAG_NAME, "a").text: r.text for r in failed}
    assert sorted(by_id) == ["invoice-01", "refund-01"]  # in the order they finished
    assert "Sorry, no idea." in by_id["refund-01"]
    assert "does not contain 'refund'" in by_id["refund-01"]
    _shot(driver, "run")
    driver.find_element(By.ID, "search").send_keys("invoice")
    _submit(driver, "apply", "q=invoice")
    assert len(driver.find_elements(By.CSS_SELECTOR, "tr.case-row")) == 1
    # by tag: the rows keep their case's tags
    driver.find_element(By.ID, "failed").click()
    driver.find_element(By.ID, "search").clear()
    driver.find_element(By.ID, "tag").send_keys("money")
    _submit(driver, "apply", "tag=money")
    tagged = driver.find_elements(By.CSS_SELECTOR, "tr.case-row")
    assert sorted(r.find_element(By.TAG_NAME, "a").text for r in tagged) == sorted(
        f"{word}-01" for word in MONEY
    )
    assert all("money" in r.find_element(By.CSS_SELECTOR, "span.tag").text for r in tagged)
    driver.find_element(By.ID, "search").send_keys("invoice")
    _submit(driver, "apply", "q=invoice")

    # one case, with the messages it was sent
    driver.find_element(By.CSS_SELECTOR, "tr.case-row a").click()
    messages = driver.find_element(By.ID, "messages").text
    assert "Be brief." in messages and "Question about my invoice, please" in messages
    _shot(driver, "case")

    # compare: the merge gate's verdict, the flips first, word-level highlighting
    driver.get(viewer + "/compare")
    runs = [o.get_attribute("value") for o in Select(driver.find_element(By.ID, "base")).options]
    Select(driver.find_element(By.ID, "base")).select_by_value(runs[1])
    Select(driver.find_element(By.ID, "head")).select_by_value(runs[0])
    _submit(driver, "compare", "head=")
    assert driver.find_element(By.ID, "decision").text == "block"  # a 10-point drop
    paired = driver.find_elements(By.CSS_SELECTOR, "#paired tr.paired")
    assert [p.get_attribute("class") for p in paired] == ["paired pass_to_fail"] * 2
    inserted = " ".join(i.text for i in paired[0].find_elements(By.TAG_NAME, "ins"))
    assert "Sorry" in inserted and "idea" in inserted
    assert "18 case(s) with the same verdict" in driver.find_element(By.ID, "same").text
    _shot(driver, "compare")

    # history: one point per run, each with its 95% interval
    driver.get(viewer + "/prompts/echo/history")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#chart g.point")) == 2
    intervals = driver.find_elements(By.CSS_SELECTOR, "#chart line.interval")
    low, high = (float(intervals[0].get_attribute(a)) for a in ("y1", "y2"))
    assert low > high  # a real interval around 100% (SVG y grows downwards)
    assert "100.0%" in driver.find_element(By.ID, "history").text
    _shot(driver, "history")
    assert _state(runs_repo.root) == before  # the viewer wrote nothing


def test_bad_input_is_a_page_not_a_traceback(viewer: str, runs_repo: PromptRepo) -> None:
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(viewer + "/runs/no-such-run")
    assert missing.value.code == 404
    assert "no run &#39;no-such-run&#39;" in missing.value.read().decode()
    with pytest.raises(urllib.error.HTTPError) as escape:
        urllib.request.urlopen(viewer + "/runs/..%2f..%2fetc")
    assert escape.value.code == 404
    # a run killed mid-write: a cut last line and a damaged one
    (results,) = sorted((runs_repo.root / ".promptyard/runs").glob("echo--*/results.jsonl"))[:1]
    with open(results, "a", encoding="utf-8") as handle:
        handle.write("{not json}\n" + '{"run_id": "cut')
    page = urllib.request.urlopen(viewer + "/runs/" + results.parent.name).read().decode()
    assert "Skipped 2 unreadable line(s)" in page
    assert page.count('class="case-row"') == 20


def test_a_run_page_refreshes_while_its_run_is_written(
    browser: Any,  # noqa: F811  (the fixture imported above)
    viewer: str,
    runs_repo: PromptRepo,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from promptyard.evals.results import RunWriter

    (run_dir,) = sorted((runs_repo.root / ".promptyard/runs").glob("echo--*"))[-1:]
    results = run_dir / "results.jsonl"
    writer = RunWriter(run_dir)  # another process writing this run: it holds the lock
    try:
        browser.get(f"{viewer}/runs/{run_dir.name}")
        assert "running" in browser.find_element(By.TAG_NAME, "p").text
        assert len(browser.find_elements(By.CSS_SELECTOR, "tr.case-row")) == 20
        row = json.loads(results.read_text(encoding="utf-8").splitlines()[-1])
        with open(results, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**row, "case_id": "late-01"}) + "\n")
        # no reload by the reader: the page shows the new row by itself
        WebDriverWait(browser, 15).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.case-row")) == 21
        )
    finally:
        writer.close()
    # once written, the page stops reloading (a reader's scroll position stays put)
    browser.refresh()
    assert not browser.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert "running" not in browser.find_element(By.TAG_NAME, "p").text
