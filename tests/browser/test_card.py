"""The one active track card: parameters, Copy seed, Rerun, Delete (behind a dialog), Clear all, and the player's
waveform, loop, volume and download with the file's real extension."""
from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import Page, expect

from .ui import (
    SYSTEM_MESSAGES,
    USER_MESSAGES,
    generate,
    last_prompt,
    open_app,
    setting,
    stored_chat,
    submit,
    wait_state,
)

#: Whether the waveform canvas has any non-transparent pixel (test instrumentation).
CANVAS_PAINTED = """(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
  return false;
}"""


def track_names(server) -> set[str]:
    """Names the server lists in /api/tracks."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(server.url + "/api/tracks") as answer:
        return {track["name"] for track in json.load(answer)}


def test_card_player_copy_seed_and_real_extension(page: Page, live_server, tmp_path) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_app(page, live_server)
    setting(page, "format").select_option("mp3")
    setting(page, "seed_auto").uncheck()
    setting(page, "seed").fill("4242")
    message = generate(page, "card check: dusty breakbeat")

    card = page.locator("[data-role=track-card]")
    name = message.get_attribute("data-track")
    expect(card.locator("[data-role=track-title]")).to_have_text(name)
    expect(card.locator("[data-param=seed]")).to_have_text("4242")
    expect(card.locator("[data-param=format]")).to_have_text("MP3, 320 kbps")
    expect(card.locator("[data-param=model]")).to_have_text("small")
    expect(card.locator("[data-param=top_p]")).to_have_text("0.67")
    expect(message.locator("[data-action=open-track]")).to_have_text(f"{name}.mp3")

    download = page.locator("[data-role=player-download]")
    expect(download).to_have_attribute("download", f"{name}.mp3")
    with page.expect_download() as info:
        download.click()
    assert info.value.suggested_filename == f"{name}.mp3"
    info.value.save_as(tmp_path / "track.mp3")
    head = (tmp_path / "track.mp3").read_bytes()[:3]
    assert head == b"ID3" or head[0] == 0xFF, "the download is an MP3 file"

    assert page.locator("[data-role=waveform]").evaluate(CANVAS_PAINTED)
    page.locator("[data-role=player-volume]").fill("0.25")
    assert page.evaluate("document.querySelector('[data-role=player-audio]').volume") == 0.25
    waveform = page.locator("[data-role=waveform]")
    waveform.focus()
    page.wait_for_function("() => document.querySelector('[data-role=player-audio]').duration > 0")
    page.keyboard.press("End")  # before Loop is on: a looping file at its end starts over at 0
    expect(waveform).to_have_attribute("data-position", "1.000")
    page.keyboard.press("Home")
    expect(waveform).to_have_attribute("data-position", "0.000")
    box = waveform.bounding_box()
    waveform.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    assert abs(float(waveform.get_attribute("data-position")) - 0.5) < 0.05
    loop = page.locator("[data-action=player-loop]")
    loop.click()
    expect(loop).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("document.querySelector('[data-role=player-audio]').loop")

    card.locator("[data-action=copy-seed]").click()
    expect(page.locator("[data-role=toast]").last).to_contain_text("4242")
    assert page.evaluate("navigator.clipboard.readText()") == "4242"


def test_rerun_then_delete_removes_the_track_and_its_messages(page: Page, live_server) -> None:
    open_app(page, live_server)
    first = generate(page, "rerun check: glassy bells")
    count = page.locator(SYSTEM_MESSAGES).count()

    page.locator("[data-action=rerun]").click()
    rerun = page.locator(SYSTEM_MESSAGES).nth(count)
    wait_state(rerun, "done")
    expect(page.locator(USER_MESSAGES).last.locator("[data-role=rerun-badge]")).to_have_count(1)
    expect(last_prompt(page)).to_have_text("rerun check: glassy bells")
    name = rerun.get_attribute("data-track")
    assert name != first.get_attribute("data-track")
    expect(page.locator("[data-role=track-card]")).to_have_attribute("data-track", name)

    page.locator("[data-action=delete-track]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(name)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert name in track_names(live_server)

    page.locator("[data-action=delete-track]").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("[data-role=track-card]")).to_be_hidden()
    expect(page.locator(f'[data-role=message][data-track="{name}"]')).to_have_count(0)
    expect(page.locator(f'[data-role=message][data-track="{first.get_attribute("data-track")}"]')).to_have_count(2)
    assert name not in track_names(live_server)
    assert all(record.get("track") != name for record in stored_chat(page))


def test_clear_all_needs_confirmation_and_empties_tracks_and_chat(page: Page, live_server, screenshot) -> None:
    open_app(page, live_server)
    generate(page, "clear check: one")
    wait_state(submit(page, "clear check: two"), "done")
    before = track_names(live_server)
    assert len(before) >= 2

    page.locator("[data-action=clear-all]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    screenshot("clear-all-dialog", page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert track_names(live_server) == before

    page.locator("[data-action=clear-all]").click()
    dialog.get_by_role("button", name="Clear all").click()
    expect(page.locator("[data-role=message]")).to_have_count(0)
    expect(page.locator("[data-role=chat-empty]")).to_be_visible()
    expect(page.locator("[data-role=track-card]")).to_be_hidden()
    assert track_names(live_server) == set()
    assert stored_chat(page) == []
    assert not any((live_server.data_dir / "static" / "audio").glob("*.json"))
