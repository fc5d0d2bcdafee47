"""Fixes from a hands-on test in Chromium (issue 16): one prompt limit with a counter, stem split progress in the
chat (after generation, on request, of an uploaded file) and the stem sets of uploads reopened after a reload,
a seed out of range corrected with a warning, the .txt export in local time, a failed job keeping the prompt and
Last seed, another tab's job not taken for this tab's own after a reload, and the new track's card brought into
view on a phone."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from audiocraft_webui import protocol

from .ui import (
    JOB_TIMEOUT_MS,
    SYSTEM_MESSAGES,
    choose_file,
    generate,
    job_message,
    open_app,
    set_number,
    setting,
    submit,
    wait_state,
    wav_bytes,
)

SPLITS = f"{SYSTEM_MESSAGES}[data-state]:has([data-role=job-kind])"
TOAST = "[data-role=toast]"


def pinned(page: Page, message):
    """The same message located by its job id (a `.last` locator would move on to newer messages)."""
    page.wait_for_function("node => node.dataset.jobId", arg=message.element_handle())
    return page.locator(f'{SYSTEM_MESSAGES}[data-job-id="{message.get_attribute("data-job-id")}"]')

#: Records every state, status and percent any split message goes through (test instrumentation only).
WATCH_SPLITS = """() => {
  const seen = [];
  const log = document.querySelector("[data-role=chat-log]");
  new MutationObserver(() => {
    for (const node of log.querySelectorAll("[data-role=message][data-kind=system]")) {
      if (!node.querySelector("[data-role=job-kind]")) continue;
      const status = node.querySelector("[data-role=job-status]")?.textContent ?? "";
      const percent = node.querySelector("[data-role=job-percent]")?.textContent ?? "";
      seen.push(`${node.dataset.jobId}|${node.dataset.state}|${status}|${percent}`);
    }
  }).observe(log, { subtree: true, childList: true, attributes: true, characterData: true });
  return seen;
}"""


def sent_submits(page: Page) -> list[str]:
    """Every submit_sliders frame the page sends from now on."""
    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on(
        "framesent", lambda payload: frames.append(payload) if isinstance(payload, str) and "submit_sliders" in payload
        else None))
    return frames


def test_one_prompt_limit_with_a_visible_counter(page: Page, live_server) -> None:
    frames = sent_submits(page)
    open_app(page, live_server)
    limit = json.loads(page.locator("#boot").text_content())["max_prompt_chars"]
    assert limit == protocol.MAX_PROMPT_CHARS
    prompt, count = page.locator("[data-role=prompt]"), page.locator("[data-role=prompt-count]")
    assert prompt.get_attribute("maxlength") is None, "nothing is cut off silently"
    expect(count).to_have_text(f"0 / {limit}")
    prompt.fill("x" * limit)
    expect(count).to_have_text(f"{limit} / {limit}")
    expect(count).not_to_have_attribute("data-kind", "error")
    prompt.fill("🎵" * (limit - 1) + "a")  # counted in characters as the server counts them, not UTF-16 units
    expect(count).to_have_text(f"{limit} / {limit}")
    prompt.fill("x" * (limit + 5))
    expect(count).to_have_text(f"{limit + 5} / {limit}")
    expect(count).to_have_attribute("data-kind", "error")
    page.locator("[data-role=submit]").click()
    expect(page.locator("[data-role=composer-hint]")).to_have_text(
        f"The prompt is too long: {limit + 5} characters, at most {limit}.")
    expect(prompt).to_have_attribute("aria-invalid", "")
    assert not frames, "a prompt over the limit is not sent"
    expect(prompt).to_have_value("x" * (limit + 5))
    page.locator("[data-role=language]").select_option("ru")
    expect(count).to_have_text(f"{limit + 5} / {limit}")
    page.locator("[data-role=language]").select_option("en")


def test_stem_split_progress_shows_in_the_chat(page: Page, live_server) -> None:
    open_app(page, live_server)
    seen = page.evaluate_handle(WATCH_SPLITS)
    splits = page.locator(SPLITS)

    setting(page, "stem_split").select_option("vocals")  # 1. right after the generation
    name = generate(page, "split in the chat: after").get_attribute("data-track")
    after = pinned(page, splits.last)
    expect(after.locator("[data-role=job-kind]")).to_have_text(f"Stems{name}")
    wait_state(after, "done")
    expect(after.locator(".job-result")).to_contain_text("2 stems")

    setting(page, "stem_split").select_option("")  # 2. on request, from the stems panel
    other = generate(page, "split in the chat: on request").get_attribute("data-track")
    page.locator("[data-role=stems-target]").select_option("drums")
    page.locator("[data-action=request-stems]").click()
    expect(splits).to_have_count(2)
    requested = pinned(page, splits.last)
    expect(requested.locator("[data-role=job-kind]")).to_have_text(f"Stems{other}")
    wait_state(requested, "done")
    after.locator("[data-action=open-stems]").click()  # the first split's button brings its track back
    expect(page.locator("[data-role=track-card]")).to_have_attribute("data-track", name)
    expect(page.locator("[data-role=stems] [data-role=stem]")).to_have_count(2)

    page.locator("[data-role=advanced] summary").click()  # 3. an uploaded file
    choose_file(page, "[data-role=demucs-file]", "chat take.wav", wav_bytes(1.0, rate=44100, channels=2))
    page.locator("[data-action=demucs-run]").click()
    expect(splits).to_have_count(3)
    upload = pinned(page, splits.last)
    expect(upload.locator("[data-role=job-kind]")).to_have_text("Demucschat take.wav")
    wait_state(upload, "done")
    expect(upload.locator(".job-result")).to_contain_text("4 stems")

    states = seen.json_value()
    for message in (after, requested, upload):
        job = message.get_attribute("data-job-id")
        mine = [entry for entry in states if entry.startswith(f"{job}|")]
        assert any(re.match(rf"{job}\|running\|[^|]+\|\d+%$", entry) for entry in mine), mine
        assert mine[-1].startswith(f"{job}|done|Done"), mine

    # After a reload the stems of the upload are still on disk: the Demucs panel and the chat reopen them.
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    page.locator("[data-role=advanced] summary").click()
    sets = page.locator("[data-role=demucs-set]")
    expect(sets.first).to_contain_text("chat take.wav")
    sets.first.locator("[data-action=demucs-open]").click()
    expect(page.locator("[data-role=stems-title]")).to_have_text("Stems of chat take.wav")
    expect(page.locator("[data-role=stems] [data-role=stem]")).to_have_count(4)
    page.locator("[data-action=toggle-compact]").focus()
    page.locator(SPLITS).nth(1).locator("[data-action=open-stems]").click()
    expect(page.locator("[data-role=stems] [data-role=stem]")).to_have_count(2)
    page.locator(SPLITS).last.locator("[data-action=open-stems]").click()
    expect(page.locator("[data-role=stems-title]")).to_have_text("Stems of chat take.wav")


def test_a_seed_out_of_range_is_corrected_with_a_warning(page: Page, live_server) -> None:
    open_app(page, live_server)
    setting(page, "seed_auto").uncheck()
    seed = setting(page, "seed")
    for typed, used in (("-7", "0"), ("99999999999", str(protocol.SEED_MAX)), ("12.9", "12")):
        seed.fill(typed)
        seed.dispatch_event("change")
        expect(seed).to_have_value(used)
        expect(page.locator(TOAST).last).to_have_text(
            re.compile(rf"The seed must be a whole number from 0 to {protocol.SEED_MAX}: {used} is used\."))
    count = page.locator(TOAST).count()
    seed.fill("4242")
    seed.dispatch_event("change")
    expect(seed).to_have_value("4242")
    page.wait_for_timeout(200)
    assert page.locator(TOAST).count() == count, "a good seed says nothing"


def test_the_text_export_uses_local_time(new_page, live_server, tmp_path) -> None:
    zone = ZoneInfo("Pacific/Kiritimati")  # UTC+14: the local day and hour differ from UTC's
    page = new_page(timezone_id="Pacific/Kiritimati")
    open_app(page, live_server)
    generate(page, "local time check: marimba")
    before = datetime.now(zone)
    with page.expect_download() as info:
        page.locator("[data-action=export-txt]").click()
    after = datetime.now(zone)
    stamps = {moment.strftime("%Y-%m-%dT%H-%M") for moment in (before, after, after + timedelta(seconds=1))}
    name = info.value.suggested_filename
    assert any(name.startswith(f"chat_{stamp}") for stamp in stamps), (name, stamps)
    info.value.save_as(tmp_path / "chat.txt")
    text = (tmp_path / "chat.txt").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.endswith("you: local time check: marimba"))
    written = datetime.strptime(line[1:17], "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    assert abs((written - before).total_seconds()) < 180, (line, before)


def test_a_failed_job_keeps_the_prompt_and_the_last_seed(page: Page, live_server) -> None:
    open_app(page, live_server)
    set_number(page, "duration", 1)
    message = submit(page, "good take before a failure")
    wait_state(message, "done")
    last = page.locator("[data-role=last-seed-value]")
    expect(last).to_have_text(re.compile(r"^\d+$"))
    shown = last.text_content()
    assert f"seed {shown}" in message.text_content()
    expect(page.locator("[data-role=prompt]")).to_have_value("")

    choose_file(page, "[data-purpose=continuation] [data-role=upload-input]", "blip.wav", wav_bytes(0.005))
    expect(page.locator("[data-purpose=continuation]")).to_have_attribute("data-state", "ready")
    failing = submit(page, "continue a blip, and fail")
    wait_state(failing, "failed")
    expect(page.locator("[data-role=prompt]")).to_have_value("continue a blip, and fail")
    expect(last).to_have_text(shown)
    expect(failing.locator("[data-role=job-error]")).to_have_text("The continuation failed.")
    expect(failing.locator("[data-role=job-error-detail]")).not_to_be_empty()
    page.locator("[data-purpose=continuation] [data-action=clear-upload]").click()


def test_another_tabs_job_is_not_this_tabs_own_after_a_reload(page: Page, live_server) -> None:
    open_app(page, live_server)
    other = page.context.new_page()  # same browser: the chat in localStorage is shared, the tab id is not
    open_app(other, live_server)
    set_number(page, "duration", 60)
    running = submit(page, "one tab's long job")
    expect(running).to_have_attribute("data-state", "running", timeout=JOB_TIMEOUT_MS)
    for _ in range(2):  # as it is, and after a reload with the job in the shared chat
        mirrored = other.locator(f'{SYSTEM_MESSAGES}[data-job-id="{running.get_attribute("data-job-id")}"]')
        expect(mirrored).to_have_attribute("data-state", "running")
        expect(other.locator("[data-role=submit]")).to_be_enabled()
        expect(other.locator("[data-action=cancel-job]")).to_be_hidden()
        other.reload()
        other.wait_for_selector("html[data-ready=true]")
        expect(other.locator("[data-role=connection]")).to_have_attribute("data-state", "connected")
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(page.locator("[data-role=submit]")).to_be_disabled()  # its own job, after a reload too
    expect(page.locator("[data-action=cancel-job]")).to_be_visible()
    page.locator("[data-action=cancel-job]").click()
    wait_state(running, "cancelled")
    expect(page.locator("[data-role=submit]")).to_be_enabled()
    other.close()


def test_a_new_track_is_brought_into_view_on_a_phone(narrow_page: Page, live_server) -> None:
    open_app(narrow_page, live_server)
    narrow_page.evaluate("() => window.scrollTo(0, 0)")
    count = narrow_page.locator(SYSTEM_MESSAGES).count()
    set_number(narrow_page, "duration", 1)
    narrow_page.locator("[data-role=prompt]").fill("phone check: the card comes into view")
    narrow_page.locator("[data-role=submit]").click()
    wait_state(job_message(narrow_page, count), "done")
    card = narrow_page.locator("[data-role=track-card]")
    expect(card.locator("[data-role=track-prompt]")).to_have_text("phone check: the card comes into view")
    narrow_page.wait_for_function("""() => { const box = document.querySelector("[data-role=track-card]")
      .getBoundingClientRect(); return box.top >= 0 && box.top < window.innerHeight / 2; }""")
