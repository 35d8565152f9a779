"""The trigger form of ``ohlcv_reingest`` in headless Chromium (Debian's chromium and
chromium-driver; no browser download): date pickers and param descriptions are shown.
The screenshot is kept in ``artifacts/trigger-form.png``."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]


def test_trigger_form_shows_date_pickers_and_descriptions(world, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    stack = world["stack"]
    wait = WebDriverWait(browser, 60)
    browser.get(f"{stack.url}/auth/token/login")  # all-admins simple auth: sets the cookie
    browser.get(f"{stack.url}/dags/ohlcv_reingest")
    trigger = wait.until(
        ec.element_to_be_clickable(
            (By.XPATH, "//button[normalize-space()='Trigger' or @aria-label='Trigger Dag']")
        )
    )
    trigger.click()
    wait.until(lambda d: "Start date (UTC)" in d.page_source)
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    browser.save_screenshot(str(artifacts / "trigger-form.png"))
    source = browser.page_source
    for text in (
        "Start date (UTC)",
        "End date (UTC)",
        "catch-up mode",
        "Roll rule",
        "Registry symbols DATASET:ROOT",
    ):
        assert text in source, text
    assert browser.find_elements(By.CSS_SELECTOR, "input[type='date']"), "no date picker"
