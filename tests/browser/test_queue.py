"""The queue is visible in every tab (from `queue_state`), with a Cancel button per job."""
from __future__ import annotations

from playwright.sync_api import expect

from .ui import open_app, set_number, submit, wait_state

QUEUE_ITEMS = "[data-role=queue] [data-role=queue-item]"


def test_two_tabs_see_the_same_queue_and_can_cancel_each_others_jobs(new_page, live_server, screenshot) -> None:
    first, second = new_page(), new_page()
    open_app(first, live_server)
    open_app(second, live_server)
    set_number(first, "duration", 60)
    set_number(second, "duration", 60)

    running = submit(first, "tab one: long ambient drone")
    expect(running).to_have_attribute("data-state", "running", timeout=60_000)
    row = second.locator(QUEUE_ITEMS).first
    expect(row).to_have_attribute("data-state", "running")
    expect(row.locator("[data-role=queue-label]")).to_have_text("tab one: long ambient drone")
    # The row says the job's real phase (the hands-on test saw "Starting" for every phase).
    expect(row.locator("[data-role=queue-phase]")).to_have_text("Generating", timeout=60_000)
    expect(second.locator("[data-role=queue]")).to_have_attribute("data-state", "busy")

    waiting = submit(second, "tab two: queued behind it")
    expect(waiting).to_have_attribute("data-state", "queued")
    expect(waiting.locator("[data-role=job-status]")).to_have_text("Queued, position 1")
    expect(first.locator(QUEUE_ITEMS)).to_have_count(2)
    second_row = first.locator(QUEUE_ITEMS).nth(1)
    expect(second_row.locator("[data-role=queue-label]")).to_have_text("tab two: queued behind it")
    screenshot("queue", first)

    second_row.locator("[data-action=cancel-queued]").click()
    wait_state(waiting, "cancelled")
    expect(second.locator("[data-role=submit]")).to_be_enabled()
    expect(second.locator(QUEUE_ITEMS)).to_have_count(1)

    second.locator(QUEUE_ITEMS).first.locator("[data-action=cancel-queued]").click()
    wait_state(running, "cancelled")
    expect(first.locator("[data-role=submit]")).to_be_enabled()
    expect(first.locator("[data-role=queue]")).to_have_attribute("data-state", "empty")
    expect(second.locator("[data-role=queue]")).to_have_attribute("data-state", "empty")
