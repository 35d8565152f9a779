"""The console plugin on the running Airflow: its API refuses callers without a login, and a
person in headless Chromium opens it from the UI's navigation, reads a heatmap cell and a
gap row that match the database, and opens the other tabs. Screenshots go to
``artifacts/console-*.png``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from market_backfill.trading_calendar import trading_minutes
from market_backfill_devtools.airflow_stack import AirflowStack
from tests.conftest import ROOT
from tests.e2e.conftest import utc

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]

CAL = "CME Globex Equity"
HOLE = (utc("2025-10-14T14:00:00"), utc("2025-10-14T16:30:00"))  # 150 trading minutes


USER, PASSWORD = "quant", "minute-bars-4ever"


@pytest.fixture(scope="module")
def login_server(world, tmp_path_factory):
    """A second api-server on the same databases whose simple auth manager requires a login
    (user ``quant``, role viewer), with the plugin."""
    home = tmp_path_factory.mktemp("login-airflow")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    env = {
        "AIRFLOW_CONN_MARKET_DB": world["db"].airflow_uri,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }
    with AirflowStack(home, ROOT / "dags", env, components=("api-server",)) as server:
        yield server


def _status(stack, path: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(stack.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def october_with_a_hole(world):
    """October loaded, then 150 minutes of 2025-10-14 deleted and detected (not repaired)."""
    stack, db = world["stack"], world["db"]
    conf = {
        "source": "dbn_file",
        "dbn_path": str(world["files"] / "*.dbn.zst"),
        "start": "2025-10-01",
        "end": "2025-10-31",
    }
    for dag_id in ("ohlcv_reingest", "gap_detection"):  # as test_airflow_e2e leaves them
        stack.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
    stack.wait_until_idle(timeout=600)  # their scheduled runs
    run_id = stack.trigger("ohlcv_reingest", conf)
    assert stack.wait_for_run("ohlcv_reingest", run_id) == "success"
    stack.wait_until_idle(timeout=600)  # the runs the new bars trigger through the Asset
    with db.connect() as conn:
        conn.execute("DELETE FROM market_bars_ohlcv_1m_clean WHERE ts >= %s AND ts < %s", HOLE)
        conn.commit()
    run_id = stack.trigger(
        "gap_detection", {"start": "2025-10-01", "end": "2025-10-31", "repair": False}
    )
    assert stack.wait_for_run("gap_detection", run_id) == "success"
    stack.wait_until_idle()
    with db.connect() as conn:
        gap = conn.execute(
            "SELECT gap_start, gap_end, minutes, status FROM ohlcv_gaps WHERE gap_start = %s",
            (HOLE[0],),
        ).fetchone()
    assert gap == (HOLE[0], HOLE[1], 150, "open")
    return gap


def _shot(browser, name: str) -> None:
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    browser.save_screenshot(str(artifacts / f"console-{name}.png"))


def _open_from_navigation(browser, url: str, attempts: int = 3) -> None:
    """Open Airflow's home page and click the console's entry in its navigation until the
    console's page is open. Once, in a full CI run, a click on the entry the moment it
    became clickable left the UI on its home page for a minute (the React app still
    settling under load): each attempt loads the home page afresh and clicks once; the
    failure names the page each attempt ended on (a screenshot of each in ``artifacts/``)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ended = []
    for attempt in range(1, attempts + 1):
        browser.get(f"{url}/")
        entry = WebDriverWait(browser, 60).until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href$='plugin/market-backfill']"))
        )
        entry.click()
        try:
            WebDriverWait(browser, 20).until(
                lambda d: d.current_url.endswith("/plugin/market-backfill")
            )
            return
        except TimeoutException:
            ended.append(browser.current_url)
            _shot(browser, f"navigation-attempt-{attempt}")
    raise AssertionError(f"the console's navigation entry did not open it: {ended}")


def test_a_person_opens_the_console_from_the_navigation(world, browser, october_with_a_hole):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    stack, db = world["stack"], world["db"]
    wait = WebDriverWait(browser, 60)
    browser.get(f"{stack.url}/auth/token/login")  # all-admins simple auth: sets the cookie
    _open_from_navigation(browser, stack.url)
    frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
    browser.switch_to.frame(frame)
    cell_css = "td[data-symbol='GLBX.MDP3:NQ'][data-month='2025-10']"
    cell = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, cell_css)))
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))

    lo, hi = utc("2025-10-01"), utc("2025-11-01")
    with db.connect() as conn:
        stored = conn.execute(
            "SELECT count(*) FROM market_bars_ohlcv_1m_clean WHERE symbol = 'GLBX.MDP3:NQ' "
            "AND roll_rule = 'v' AND rank = 0 AND ts >= %s AND ts < %s",
            (lo, hi),
        ).fetchone()[0]
        open_gaps = conn.execute(
            "SELECT count(*) FROM ohlcv_gaps WHERE status = 'open' AND gap_start >= %s "
            "AND gap_start < %s",
            (lo, hi),
        ).fetchone()[0]
    expected = len(trading_minutes(CAL, lo, hi))
    assert int(cell.get_attribute("data-expected")) == expected
    assert int(cell.get_attribute("data-stored")) == stored
    assert int(cell.get_attribute("data-open-gaps")) == open_gaps >= 1
    title = cell.get_attribute("title")
    assert f"expected {expected:,}" in title
    assert f"stored {stored:,}" in title
    assert "gapmark" in cell.get_attribute("class")
    _shot(browser, "heatmap")

    # the month range filter: October only
    for name in ("start", "end"):
        field = browser.find_element(By.CSS_SELECTOR, f"#completeness-filter input[name={name}]")
        browser.execute_script("arguments[0].value = '2025-10'", field)
    browser.find_element(By.CSS_SELECTOR, "#completeness-filter button[type=submit]").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#heatmap td[data-month]")) == 1)
    cell = browser.find_element(By.CSS_SELECTOR, cell_css)
    assert int(cell.get_attribute("data-stored")) == stored

    cell.click()  # that month's gaps
    row_css = "#gaps-table tr.gap[data-gap-start='2025-10-14T14:00:00+00:00']"
    row = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, row_css)))
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:5] == ["NQ.v.0", "2025-10-14 14:00:00Z", "2025-10-14 16:30:00Z", "150", "open"]
    _shot(browser, "gaps")

    browser.find_element(By.ID, "tab-runs").click()
    link_css = "#runs-table a[href*='dags/gap_detection/runs/']"
    link = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, link_css)))
    assert link.get_attribute("target") == "_top"
    run_row = link.find_element(By.XPATH, "./ancestor::tr")
    run_row.find_elements(By.TAG_NAME, "td")[2].click()  # a run opens its chunk rows
    chunks = run_row.find_element(By.XPATH, "following-sibling::tr[1]")
    wait.until(lambda d: chunks.is_displayed())
    assert "GLBX.MDP3:NQ" in chunks.text
    _shot(browser, "runs")

    browser.find_element(By.ID, "tab-freshness").click()
    fresh = wait.until(
        ec.visibility_of_element_located(
            (By.CSS_SELECTOR, "#freshness-table tr[data-symbol='GLBX.MDP3:NQ']")
        )
    )
    with db.connect() as conn:
        newest = conn.execute(
            "SELECT max(ts) FROM market_bars_ohlcv_1m_clean WHERE symbol = 'GLBX.MDP3:NQ'"
        ).fetchone()[0]
    assert f"{newest:%Y-%m-%d %H:%M}" in fresh.text
    _shot(browser, "freshness")


def test_the_console_api_refuses_callers_without_a_login(login_server, october_with_a_hole):
    path = "/market-backfill/api/completeness"
    assert _status(login_server, path, {}) == 401
    assert _status(login_server, path, {"Authorization": "Bearer forged.token.value"}) == 403
    token = login_server.request(
        "POST", "/auth/token", {"username": USER, "password": PASSWORD}, auth=False
    )["access_token"]
    assert _status(login_server, path, {"Authorization": f"Bearer {token}"}) == 200
    schema = login_server.get("/market-backfill/openapi.json", auth=False)
    assert {"/api/completeness", "/api/gaps", "/api/runs", "/api/freshness"} <= set(schema["paths"])


def test_a_browser_without_a_login_signs_in_and_comes_back(login_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(f"{login_server.url}/market-backfill/")
    wait.until(lambda d: "/auth/login" in d.current_url)
    assert "market-backfill" in browser.current_url  # where it goes back to
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys(USER)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[@type='submit']").click()
    wait.until(lambda d: d.current_url == f"{login_server.url}/market-backfill/")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert browser.find_elements(By.CSS_SELECTOR, "td[data-month]")
