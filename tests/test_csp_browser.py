"""The Content-Security-Policy in Chromium: every main page loads, and works, with no violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from manifest.sync import manifest_sync
from tests.support import log_in_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

V0616 = "244122.26.06.10.2000-1-bnet.65386"

# Collects every violation the page reports, from the first byte of each document on.
LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  {directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample, line: e.lineNumber}));
"""


@pytest.fixture
def watched(page):
    """The page, with CSP violations gathered from events and the console."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(LISTEN)

    def violations() -> list[object]:
        events = page.evaluate("window.__csp || []")
        said = [text for text in console if "Content Security Policy" in text]
        return [*events, *said]

    page.violations = violations
    return page


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")
    assert page.violations() == [], url


def test_the_main_pages_load_and_work_under_the_csp_without_a_violation(site, bungie, watched):
    page = watched
    bungie.app.publish("2026-06-09")
    assert manifest_sync().outcome == "live"
    bungie.app.publish("2026-06-16", version=V0616)
    assert manifest_sync().outcome == "live"

    visit(page, site + "/")
    visit(page, site + "/manifest/")
    visit(page, f"{site}/manifest/{V0616}/")
    entry = page.locator(".change-list a").first.get_attribute("href")
    visit(page, site + entry)
    visit(page, site + "/manifest/search/?q=Ace")

    log_in_in_browser(page, site)
    assert page.violations() == []
    expect(page.locator(".character-header .emblem-background").first).to_be_attached()
    # htmx (our only script) still works under the policy: filtering swaps the body in place.
    page.get_by_label("Filter").fill("is:weapon")
    expect(page.locator("#inventory-body .item").first).to_be_visible()
    assert page.violations() == []
    item = page.locator("#inventory-body .item a").first.get_attribute("href")
    visit(page, site + item)
    visit(page, site + "/account/")

    # The listener is live: an inline style set now is a violation it reports.
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.wait_for_function("window.__csp.length > 0")
    assert any(v["directive"].startswith("style-src") for v in page.evaluate("window.__csp"))
