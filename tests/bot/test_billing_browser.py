"""The billing page in a real browser (headless Chromium): sign in through a link from
Slack, read the balances, submit an invalid and then a valid auto-recharge form, start a
top-up on Stripe Checkout (the loopback fake). Screenshots of each step are saved under
test-artifacts/billing-*.png."""

from __future__ import annotations

from datetime import timedelta

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from ledger.auto_recharge import auto_recharge
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.models import Account
from ledger.web_access import issue_sign_in_link
from tests.support.browser import browser, screenshot  # noqa: F401  (fixture)
from tests.support.factories import card_saved, story
from tests.support.payments_support import (  # noqa: F401  (fixtures)
    checkout_fake,
    localstripe_url,
    served,
    wait_until,
)


def text_of(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def submit(driver, form_id: str) -> None:
    """Press the form's button and wait for the page the server answers with: a click
    returns once it is dispatched, before the browser has replaced the page."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, form_id).find_element(By.TAG_NAME, "button").click()
    wait_until(lambda: _replaced(page))


def _replaced(element) -> bool:
    try:
        element.is_enabled()  # any use of an element of a page that is gone raises
    except StaleElementReferenceException:
        return True
    return False


def test_an_admin_signs_in_reads_balances_sets_auto_recharge_and_tops_up(
    browser,  # noqa: F811
    served,  # noqa: F811
    checkout_fake,  # noqa: F811
):
    sessions = served.context.sessions
    now = utcnow()
    ids = story(sessions, plan=1000, wallet=500, now=now - timedelta(days=5))
    transaction(
        sessions,
        lambda s: charge(s, ids["account"], ids["b"], "message", 250, idempotency_key="k", now=now),
    )
    token = transaction(
        sessions, lambda s: issue_sign_in_link(s, ids["account"], "UADMIN", can_edit=True)
    )
    link = f"{served.url}/billing/{ids['account']}/sign-in/{token}"

    # 1. sign in through the link: the page, with what the customer document lists
    browser.get(link)
    assert browser.current_url == f"{served.url}/billing/{ids['account']}"
    assert text_of(browser, "#wallet").startswith("500 credits ($5.00)")
    assert text_of(browser, "#plan").startswith("750 of 1,000")
    assert text_of(browser, "#renewal")
    assert "250" in text_of(browser, "#usage-by-agent")
    screenshot(browser, "billing-1-signed-in")

    # 2. an invalid auto-recharge form: the modal's rule, beside its field, nothing saved
    form = browser.find_element(By.ID, "auto-recharge-form")
    enabled = form.find_element(By.NAME, "enabled")
    if not enabled.is_selected():
        enabled.click()
    for name, value in (("threshold", "0"), ("amount", "50")):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    submit(browser, "auto-recharge-form")
    error = text_of(browser, "#auto-recharge-threshold-error")
    assert error == "Set a threshold above zero to turn auto-recharge on."
    threshold = browser.find_element(By.ID, "auto-recharge-threshold")
    assert threshold.get_attribute("aria-invalid") == "true"
    assert "Nothing was saved" in text_of(browser, ".error-summary")
    screenshot(browser, "billing-2-invalid-auto-recharge")
    assert not transaction(sessions, lambda s: s.get(Account, ids["account"]).auto_recharge_enabled)

    # 3. the same form, valid, but no card to charge yet: said on the on/off field
    threshold.clear()
    threshold.send_keys("20")
    submit(browser, "auto-recharge-form")
    assert text_of(browser, "#auto-recharge-enabled-error").startswith("Save a card first")
    assert not transaction(sessions, lambda s: s.get(Account, ids["account"]).auto_recharge_enabled)

    # ... and once a card is saved: saved through the same ledger function
    card_saved(sessions, ids["account"])
    submit(browser, "auto-recharge-form")
    assert text_of(browser, ".notice") == "Auto-recharge settings saved."
    screenshot(browser, "billing-3-auto-recharge-saved")
    saved = transaction(sessions, lambda s: auto_recharge(s.get(Account, ids["account"])))
    assert (saved.enabled, saved.threshold_minor, saved.amount_minor) == (True, 2000, 5000)

    # 4. top up: the amount -> Stripe Checkout
    amount = browser.find_element(By.ID, "topup-amount")
    amount.send_keys("25")
    browser.find_element(By.CSS_SELECTOR, "#topup button").click()
    wait_until(lambda: browser.current_url.startswith(f"{checkout_fake.url}/pay/cs_test_"))
    assert text_of(browser, "#amount") == "Pay 25.00 USD"
    screenshot(browser, "billing-4-checkout")
    [created] = checkout_fake.created
    assert created["data"]["line_items"][0]["price_data"]["unit_amount"] == "2500"
    assert created["data"]["metadata"]["creditbot_account_id"] == str(ids["account"])
    assert created["data"]["metadata"]["creditbot_user"] == "UADMIN"

    # 5. the link was single-use
    browser.get(link)
    assert "already used" in text_of(browser, "main")
    screenshot(browser, "billing-5-link-used-twice")
