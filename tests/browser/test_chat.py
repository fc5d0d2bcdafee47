"""The chat: prompts stay text (also in storage), history survives reloads or is rebuilt from the server,
export to .json and .txt, compact mode."""
from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from .ui import SYSTEM_MESSAGES, USER_MESSAGES, generate, last_prompt, open_app, stored_chat

RECORD_FIELDS = {"id", "role", "at", "text", "rerun", "reply", "job", "state", "progress", "phase", "position",
                 "seed", "error", "notes", "track", "audio", "json", "continuation", "took", "rtf", "device",
                 "downloaded", "total", "kind", "label", "source", "set", "target", "stems"}
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"> drums & <b>bass</b>'


def test_a_hostile_prompt_stays_text_in_the_chat_and_in_storage(page: Page, live_server) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    open_app(page, live_server)
    message = generate(page, HOSTILE)
    expect(last_prompt(page)).to_have_text(HOSTILE)
    expect(page.locator("[data-role=chat-log] img, [data-role=chat-log] b")).to_have_count(0)
    expect(page.locator("[data-role=track-prompt]")).to_have_text(HOSTILE)
    records = stored_chat(page)
    assert any(record.get("text") == HOSTILE for record in records)
    assert all(set(record) <= RECORD_FIELDS for record in records), "the chat is stored as data fields only"
    done = next(record for record in records if record.get("job") == message.get_attribute("data-job-id")
                and record["role"] == "system")
    assert done["state"] == "done" and done["audio"].startswith("static/audio/")

    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(last_prompt(page)).to_have_text(HOSTILE)
    expect(page.locator("[data-role=chat-log] img")).to_have_count(0)
    assert page.title() != "pwned" and not dialogs


def test_history_is_rebuilt_from_the_server_when_storage_is_empty(page: Page, live_server) -> None:
    open_app(page, live_server)
    message = generate(page, "history check: soft pads")
    name = message.get_attribute("data-track")
    page.evaluate("localStorage.clear()")
    page.reload()
    page.wait_for_selector("html[data-ready=true]")

    rebuilt = page.locator(f'{SYSTEM_MESSAGES}[data-track="{name}"]')
    expect(rebuilt).to_have_attribute("data-state", "done")
    prompt = page.locator(f'{USER_MESSAGES}[data-track="{name}"] [data-role=message-text]')
    expect(prompt).to_have_text("history check: soft pads")
    assert any(record.get("track") == name for record in stored_chat(page))
    # After a load the card shows the newest track (it used to stay empty).
    expect(page.locator("[data-role=track-card]")).to_have_attribute("data-track", name)
    expect(page.locator("[data-role=player-download]")).to_have_attribute("download", f"{name}.wav")
    page.locator("[data-role=track-card]").evaluate("card => { card.hidden = true; delete card.dataset.track; }")
    rebuilt.locator("[data-action=open-track]").click()
    expect(page.locator("[data-role=track-card]")).to_have_attribute("data-track", name)
    expect(page.locator("[data-role=track-prompt]")).to_have_text("history check: soft pads")


def test_export_json_and_txt_and_compact_mode(page: Page, live_server, tmp_path, screenshot) -> None:
    open_app(page, live_server)
    generate(page, "export check: bright synth arpeggio")

    with page.expect_download() as info:
        page.locator("[data-action=export-json]").click()
    assert info.value.suggested_filename.startswith("chat_") and info.value.suggested_filename.endswith(".json")
    info.value.save_as(tmp_path / "chat.json")
    exported = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    messages = exported["messages"]
    assert {"user", "system"} <= {message["role"] for message in messages}
    assert any(message.get("text") == "export check: bright synth arpeggio" for message in messages)

    with page.expect_download() as info:
        page.locator("[data-action=export-txt]").click()
    assert info.value.suggested_filename.endswith(".txt")
    info.value.save_as(tmp_path / "chat.txt")
    text = (tmp_path / "chat.txt").read_text(encoding="utf-8")
    assert "you: export check: bright synth arpeggio" in text and "system: Done — small_" in text

    compact = page.locator("[data-action=toggle-compact]")
    compact.click()
    expect(compact).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-role=chat-log]")).to_have_attribute("data-compact", "true")
    screenshot("chat-compact", page)
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(page.locator("[data-role=chat-log]")).to_have_attribute("data-compact", "true")
    page.locator("[data-action=toggle-compact]").click()
    expect(page.locator("[data-role=chat-log]")).to_have_attribute("data-compact", "false")
