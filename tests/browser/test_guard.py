"""The double-submit guard: Submit is blocked while this tab's job is open and released when the job is done,
refused, failed (a worker failure must not lock the UI) or cancelled; Enter / Ctrl+Enter submit exactly once
(one key listener), Shift+Enter adds a line."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .ui import (
    SYSTEM_MESSAGES,
    choose_file,
    job_message,
    last_prompt,
    open_app,
    set_number,
    submit,
    wait_state,
    wav_bytes,
)

#: Counts submit_sliders frames sent on the page's WebSocket.
SUBMITS = "submit_sliders"


def watch_submits(page: Page) -> list[str]:
    """Collect every submit frame the page sends from now on."""
    frames: list[str] = []

    def on_frame(payload: object) -> None:
        if isinstance(payload, str) and SUBMITS in payload:
            frames.append(payload)

    page.on("websocket", lambda socket: socket.on("framesent", on_frame))
    return frames


def test_submit_is_blocked_until_done_and_keys_submit_once(page: Page, live_server) -> None:
    frames = watch_submits(page)
    open_app(page, live_server)
    submit_button = page.locator("[data-role=submit]")
    prompt = page.locator("[data-role=prompt]")

    prompt.fill("first line")
    prompt.press("Shift+Enter")
    prompt.type("second line")
    expect(prompt).to_have_value("first line\nsecond line")
    assert not frames

    set_number(page, "duration", 60)  # long enough to still run while the keys below are pressed
    count = page.locator(SYSTEM_MESSAGES).count()
    prompt.press("Control+Enter")
    message = job_message(page, count)
    expect(message).to_have_attribute("data-state", "running", timeout=60_000)
    expect(submit_button).to_be_disabled()
    expect(page.locator("[data-action=cancel-job]")).to_be_visible()
    prompt.fill("sneaky second submit")
    prompt.press("Enter")
    prompt.press("Control+Enter")
    page.locator("[data-role=submit]").click(force=True)
    page.locator("[data-action=cancel-job]").click()
    wait_state(message, "cancelled")
    expect(submit_button).to_be_enabled()
    expect(page.locator("[data-action=cancel-job]")).to_be_hidden()
    assert len(frames) == 1, "one keypress, one submit; keys pressed while busy send nothing"
    expect(last_prompt(page)).to_have_text("first line\nsecond line")

    set_number(page, "duration", 1)
    prompt.fill("now it goes")
    count = page.locator(SYSTEM_MESSAGES).count()
    prompt.press("Enter")
    wait_state(job_message(page, count), "done")
    assert len(frames) == 2


def test_an_empty_prompt_is_not_sent(page: Page, live_server) -> None:
    frames = watch_submits(page)
    open_app(page, live_server)
    page.locator("[data-role=prompt]").fill("   ")
    page.locator("[data-role=submit]").click()
    expect(page.locator("[data-role=composer-hint]")).to_have_attribute("data-kind", "error")
    expect(page.locator("[data-role=prompt]")).to_have_attribute("aria-invalid", "")
    assert not frames
    expect(page.locator("[data-role=submit]")).to_be_enabled()


def test_a_refused_request_releases_the_guard(page: Page, live_server) -> None:
    """The server refuses a model it does not offer (a page out of date, say): said by its code, in either language."""
    open_app(page, live_server)
    page.locator("[data-setting=model]").evaluate(
        "select => { select.append(new Option('gone-model', 'gone-model')); select.value = 'gone-model'; }")
    message = submit(page, "a model the server does not offer")
    wait_state(message, "refused")
    expect(message.locator("[data-role=job-error]")).to_have_text("The server did not accept the value of “Model”.")
    expect(message.locator("[data-role=job-error-detail]")).to_contain_text("unknown model 'gone-model'")
    expect(page.locator("[data-setting=model]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("[data-role=submit]")).to_be_enabled()
    page.locator("[data-role=language]").select_option("ru")
    expect(message.locator("[data-role=job-error]")).to_have_text("Сервер не принял значение поля «Модель».")
    page.locator("[data-role=language]").select_option("en")


def test_a_failed_job_shows_its_error_and_releases_the_guard(page: Page, live_server) -> None:
    """A job failing on the worker (a continuation clip shorter than one codec frame) must not lock the UI."""
    open_app(page, live_server)
    choose_file(page, "[data-purpose=continuation] [data-role=upload-input]", "blip.wav", wav_bytes(0.005))
    expect(page.locator("[data-purpose=continuation]")).to_have_attribute("data-state", "ready")
    expect(page.locator("[data-role=append]")).to_be_checked()
    set_number(page, "duration", 1)
    message = submit(page, "continue a blip")
    wait_state(message, "failed")
    expect(message.locator("[data-role=job-error]")).to_contain_text("continuation")
    expect(page.locator("[data-role=submit]")).to_be_enabled()
    expect(page.locator("[data-action=cancel-job]")).to_be_hidden()


def test_a_reload_mid_job_keeps_one_live_message_and_the_guard(page: Page, live_server) -> None:
    """The job message is data keyed by job id: after a reload it follows the server's queue, no stale bubble."""
    open_app(page, live_server)
    set_number(page, "duration", 60)
    message = submit(page, "reload while it runs")
    expect(message).to_have_attribute("data-state", "running", timeout=60_000)
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(message).to_have_count(1)
    expect(message).to_have_attribute("data-state", "running")
    expect(page.locator("[data-role=submit]")).to_be_disabled()
    page.locator("[data-action=cancel-job]").click()
    wait_state(message, "cancelled")
    expect(page.locator("[data-role=submit]")).to_be_enabled()
