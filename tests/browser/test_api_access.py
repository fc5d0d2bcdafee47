"""The REST API's corner of the settings: the documentation link, and the token to copy where one is asked for."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .ui import open_app

SECTION = "[data-role=api-access]"


def open_advanced(page: Page) -> None:
    page.locator("[data-role=advanced] summary").click()
    expect(page.locator(SECTION)).to_be_visible()


def test_on_loopback_without_a_token_the_page_says_none_is_needed(page: Page, live_server) -> None:
    open_app(page, live_server)
    open_advanced(page)
    section = page.locator(SECTION)
    expect(section).to_have_attribute("data-required", "false")
    expect(section.locator("[data-role=api-token-status]")).to_contain_text("No token is needed")
    expect(section.locator("[data-role=api-token-row]")).to_be_hidden()
    link = section.locator("a[href='/api/v1/docs']")
    expect(link).to_have_text("API documentation")
    assert page.request.get(live_server.url + "/api/v1/docs").ok


def test_a_server_with_an_api_token_shows_it_to_copy_in_both_languages(page: Page, start_server) -> None:
    server = start_server("--api-token", "browser-test-token-123")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_app(page, server)
    open_advanced(page)
    section = page.locator(SECTION)
    expect(section).to_have_attribute("data-required", "true")
    expect(section.locator("[data-role=api-token]")).to_have_value("browser-test-token-123")
    section.locator("[data-action=copy-api-token]").click()
    expect(page.locator("[data-role=toast]").last).to_contain_text("API token copied")
    assert page.evaluate("navigator.clipboard.readText()") == "browser-test-token-123"
    page.locator("[data-role=language]").select_option("ru")
    expect(section.locator("[data-role=api-token-status]")).to_contain_text("требует от скриптов токен")
    expect(section.locator("[data-action=copy-api-token]")).to_have_text("Копировать")
