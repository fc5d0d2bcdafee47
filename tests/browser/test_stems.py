"""Stems: the mixer of a track split at submit time (solo, mute, volume, synchronised playback, WAV mixdown and
ZIP downloads checked byte by byte), "Separate stems" on an existing track, and Demucs on any file."""
from __future__ import annotations

import json
import urllib.request
import wave
import zipfile

from playwright.sync_api import Page, expect

from .ui import JOB_TIMEOUT_MS, choose_file, generate, open_app, setting, watch_attribute, wav_bytes

STEMS = "[data-role=stems] [data-role=stem]"


def stem(page: Page, name: str):
    """One stem row of the mixer."""
    return page.locator(f'{STEMS}[data-stem="{name}"]')


def stem_names(page: Page) -> list[str]:
    """The stems the mixer lists, in order."""
    return page.locator(STEMS).evaluate_all("rows => rows.map(row => row.dataset.stem)")


def download(page: Page, action: str, target) -> str:
    """Click a mixer button, save the download to `target` and return its suggested name."""
    with page.expect_download() as info:
        page.locator(f"[data-action={action}]").click()
    info.value.save_as(target)
    return info.value.suggested_filename


def track_count(server) -> int:
    """How many tracks the server lists."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(server.url + "/api/tracks") as answer:
        return len(json.load(answer))


def test_the_mixer_plays_solos_mutes_mixes_and_zips(page: Page, live_server, tmp_path, screenshot) -> None:
    open_app(page, live_server)
    setting(page, "stem_split").select_option("all")
    name = generate(page, "stems check: funk groove").get_attribute("data-track")
    expect(page.locator("[data-role=mixer]")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator(STEMS)).to_have_count(4)
    assert stem_names(page) == ["vocals", "drums", "bass", "other"]
    expect(page.locator("[data-role=stems-split]")).to_be_hidden()

    for row, action in (("drums", "stem-solo"), ("bass", "stem-mute")):
        button = stem(page, row).locator(f"[data-action={action}]")
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")
    stem(page, "vocals").locator("[data-role=stem-volume]").fill("1.5")

    page.locator("[data-action=player-toggle]").click()
    toggle = page.locator("[data-action=mixer-toggle]")
    states = watch_attribute(page, "[data-action=mixer-toggle]", "data-state")
    toggle.click()
    expect(page.locator("[data-action=player-toggle]")).to_have_attribute("data-state", "paused")
    page.wait_for_function("states => states.at(-1) === 'stopped'", arg=states, timeout=10_000)
    assert "playing" in states.json_value(), "Play all ran until the 1 s stems ended by themselves"
    pressed = watch_attribute(page, '[data-stem="other"] [data-action=stem-play]', "aria-pressed")
    stem(page, "other").locator("[data-action=stem-play]").click()
    page.wait_for_function("seen => seen.includes('true') && seen.at(-1) === 'false'", arg=pressed, timeout=10_000)

    stem(page, "other").locator("[data-role=stem-select]").uncheck()
    mixed = download(page, "mixer-mixdown", tmp_path / "mix.wav")
    assert mixed.startswith(f"{name}_mix_vocals+drums+bass_") and mixed.endswith(".wav")
    with wave.open(str(tmp_path / "mix.wav")) as mix:
        assert (mix.getnchannels(), mix.getsampwidth(), mix.getcomptype()) == (2, 2, "NONE")
        assert mix.getframerate() >= 8000 and mix.getnframes() >= mix.getframerate() * 0.9

    stems_dir = live_server.data_dir / "static" / "stems" / name
    assert download(page, "mixer-zip-selected", tmp_path / "some.zip") == f"{name}_vocals+drums+bass.zip"
    with zipfile.ZipFile(tmp_path / "some.zip") as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["vocals.wav", "drums.wav", "bass.wav"]
        assert archive.read("drums.wav") == (stems_dir / "drums.wav").read_bytes()
    assert download(page, "mixer-zip-all", tmp_path / "all.zip") == f"{name}_stems.zip"
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    page.locator("[data-role=stems]").scroll_into_view_if_needed()
    screenshot("stems", page)

    page.locator("[data-action=delete-track]").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("[data-role=stems]")).to_be_hidden()
    expect(page.locator(f'[data-role=message][data-track="{name}"]')).to_have_count(0)
    assert not stems_dir.exists()


def test_separate_an_existing_track_then_any_file(page: Page, live_server) -> None:
    open_app(page, live_server)
    name = generate(page, "split later: bongo loop").get_attribute("data-track")
    expect(page.locator("[data-role=mixer]")).to_be_hidden()
    page.locator("[data-role=stems-target]").select_option("drums")
    page.locator("[data-action=request-stems]").click()
    expect(page.locator("[data-role=mixer]")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    assert sorted(stem_names(page)) == ["drums", "no_drums"]
    expect(page.locator("[data-role=track-card]")).to_have_attribute("data-track", name)

    tracks = track_count(live_server)
    page.locator("[data-role=advanced] summary").click()
    choose_file(page, "[data-role=demucs-file]", "field recording.wav", wav_bytes(1.5, rate=44100, channels=2))
    page.locator("[data-action=demucs-run]").click()
    expect(page.locator("[data-role=stems-title]")).to_have_text("Stems of field recording.wav", timeout=JOB_TIMEOUT_MS)
    expect(page.locator(STEMS)).to_have_count(4)
    expect(page.locator("[data-role=demucs-status]")).to_contain_text("4 stems")
    expect(page.locator("[data-role=stems-split]")).to_be_hidden()
    expect(page.locator("[data-role=track-card]")).to_have_attribute("data-track", name)
    assert track_count(live_server) == tracks, "splitting a file makes no track"
