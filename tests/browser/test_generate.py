"""End to end: type a prompt, submit, watch the job's progress in the chat, play the finished track."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .ui import JOB_TIMEOUT_MS, open_app, set_number, setting, submit, wait_state, watch_attribute

#: Records every state and status text the newest job message goes through (test instrumentation only).
WATCH_JOB = """() => {
  const seen = [];
  const log = document.querySelector("[data-role=chat-log]");
  new MutationObserver(() => {
    const node = [...log.querySelectorAll("[data-role=message][data-kind=system]")].pop();
    const percent = node?.querySelector("[data-role=job-percent]")?.textContent ?? "";
    const status = node?.querySelector("[data-role=job-status]")?.textContent ?? "";
    if (node) seen.push(`${node.dataset.state}|${status}|${percent}`);
  }).observe(log, { subtree: true, childList: true, attributes: true, characterData: true });
  return seen;
}"""


def test_prompt_to_playable_track(page: Page, live_server, screenshot) -> None:
    open_app(page, live_server)
    # The plain flow: the page plays the finished file when asked (listening while it generates, which may
    # leave the file playing by itself, has its own tests in test_live.py).
    setting(page, "preview").uncheck()
    assert page.locator("[data-role=connection]").get_attribute("data-transport") == "websocket"
    seen = page.evaluate_handle(WATCH_JOB)
    guard = watch_attribute(page, "[data-role=submit]", "disabled")
    set_number(page, "duration", 2)

    message = submit(page, "warm lo-fi piano loop")
    wait_state(message, "done")
    assert guard.json_value() == ["", None], "Generate was blocked while the job ran, then released"

    states = seen.json_value()
    assert any(entry.startswith("running|") and re.search(r"\d+%$", entry) for entry in states), states
    assert any(entry.startswith("running|Generating") for entry in states), states
    assert states[-1].startswith("done|Done"), states
    expect(page.locator("[data-role=submit]")).to_be_enabled()

    job_id = message.get_attribute("data-job-id")
    expect(page.locator(f'[data-job-id="{job_id}"]')).to_have_count(1)  # one message per job, nothing else
    link = message.locator("[data-action=open-track]")
    expect(link).to_have_text(re.compile(r"^small_\d{8}_\d\d_\d\d(-\d+)?\.wav$"))
    card = page.locator("[data-role=track-card]")
    expect(card).to_be_visible()
    expect(card.locator("[data-role=track-prompt]")).to_have_text("warm lo-fi piano loop")

    # The live preview hands over to the file once its metadata is in; when the preview was still playing, the file
    # plays on from there by itself (a click would pause it), else the click starts it.
    page.wait_for_function("() => document.querySelector('[data-role=player-audio]').readyState >= 1")
    if page.locator("[data-action=player-toggle]").get_attribute("data-state") != "playing":
        page.locator("[data-action=player-toggle]").click()
    page.wait_for_function("() => document.querySelector('[data-role=player-audio]').currentTime > 0.3",
                           timeout=JOB_TIMEOUT_MS)
    expect(page.locator("[data-action=player-toggle]")).to_have_attribute("data-state", "playing")
    position = float(page.locator("[data-role=waveform]").get_attribute("data-position"))
    assert 0 < position <= 1
    screenshot("generate", page)
    page.locator("[data-action=player-toggle]").click()
    expect(page.locator("[data-action=player-toggle]")).to_have_attribute("data-state", "paused")
