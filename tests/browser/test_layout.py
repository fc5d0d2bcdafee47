"""Layout and access: 1280x800 and 390 wide without sideways scrolling, every control named, keyboard reach,
and the README screenshots."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .ui import generate, open_app

#: Controls without an accessible name (label, aria-label, aria-labelledby or text).
UNNAMED = """() => [...document.querySelectorAll("input, select, textarea, button, a[href], [role=slider]")]
  .filter((node) => node.getClientRects().length > 0)
  .filter((node) => !(node.labels?.length || node.getAttribute("aria-label") || node.getAttribute("aria-labelledby")
                      || node.textContent.trim()))
  .map((node) => node.outerHTML.slice(0, 120))"""

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_desktop_layout_is_labelled_and_keyboard_reachable(page: Page, live_server, screenshot) -> None:
    open_app(page, live_server)
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("href", "#prompt")
    page.keyboard.press("Enter")
    expect(page.locator("[data-role=prompt]")).to_be_focused()
    page.keyboard.type("keyboard only: steel drums")
    page.keyboard.press("Shift+Tab")
    expect(page.locator("[data-role=prompt]")).not_to_be_focused()
    generate(page, "layout check: warm synth bass")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert page.evaluate(UNNAMED) == []
    page.locator("[data-role=advanced] summary").click()
    assert page.evaluate(UNNAMED) == []
    page.locator("[data-role=advanced] summary").click()
    page.locator("[data-role=settings]").evaluate("panel => { panel.scrollTop = 0; }")
    screenshot("main", page)


def test_phone_width_stacks_the_panels(narrow_page: Page, live_server, screenshot) -> None:
    open_app(narrow_page, live_server)
    generate(narrow_page, "narrow check: kalimba")
    assert narrow_page.evaluate(NO_SIDEWAYS_SCROLL)
    assert narrow_page.evaluate(UNNAMED) == []
    for hook in ("[data-role=prompt]", "[data-role=submit]", "[data-action=player-toggle]", "[data-setting=model]"):
        box = narrow_page.locator(hook).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, hook
    narrow_page.locator("[data-action=player-toggle]").click()
    narrow_page.wait_for_function("() => document.querySelector('[data-role=player-audio]').currentTime > 0.1")
    narrow_page.locator("[data-action=player-toggle]").click()
    narrow_page.evaluate("() => window.scrollTo(0, 0)")
    screenshot("narrow", narrow_page)
