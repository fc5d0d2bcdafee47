"""Stems: the mixer of a track split at submit time (solo, mute, volume, synchronised playback, the server's WAV
mixdown of what the user hears and its ZIP downloads, checked sample by sample and byte by byte), "Separate stems"
on an existing track, Demucs on any file, and the mixer's messages for a silent selection and failed downloads."""
from __future__ import annotations

import json
import shutil
import urllib.request
import wave
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
from playwright.sync_api import Page, expect

from .ui import JOB_TIMEOUT_MS, choose_file, forgive, generate, open_app, setting, watch_attribute, wav_bytes

STEMS = "[data-role=stems] [data-role=stem]"
STATUS = "[data-role=stems] [data-role=stems-status]"
#: One PCM16 step, plus rounding: how far a sample of the downloaded 16-bit mix may be from the float sum.
PCM16_TOLERANCE = 2 / 32768
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
    with _direct.open(server.url + "/api/tracks") as answer:
        return len(json.load(answer))


def mixdown(page: Page, target: Path) -> tuple[str, dict, str]:
    """Click "Mix selected → WAV", save the WAV to `target`; return its name, the JSON the page POSTed and the URL."""
    with page.expect_request(lambda request: request.method == "POST" and "_mix/" in request.url) as sent:
        name = download(page, "mixer-mixdown", target)
    return name, sent.value.post_data_json, sent.value.url


def server_mix(url: str, body: dict) -> bytes:
    """What the server's mixdown route answers to the same JSON body."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with _direct.open(request) as answer:
        return answer.read()


def summed(folder: Path, gains: dict[str, float]) -> np.ndarray:
    """Sum of gain x stem file, computed here: float ``[frames, channels]``, peak-normalised only if it clips."""
    layers = [gain * sf.read(folder / f"{name}.wav", dtype="float64", always_2d=True)[0]
              for name, gain in gains.items()]
    mix = np.zeros((max(len(layer) for layer in layers), max(layer.shape[1] for layer in layers)))
    for layer in layers:
        mix[: len(layer), : layer.shape[1]] += layer
    peak = np.abs(mix).max()
    return mix / peak if peak > 1.0 else mix


def assert_mix_of(path: Path, folder: Path, gains: dict[str, float]) -> None:
    """The WAV at `path` is the sum of the stems in `folder` at `gains`, sample by sample."""
    got, _ = sf.read(path, dtype="float64", always_2d=True)
    expected = summed(folder, gains)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= PCM16_TOLERANCE


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
    mixed, body, url = mixdown(page, tmp_path / "mix.wav")
    assert mixed.startswith(f"{name}_mix_vocals+drums+bass_") and mixed.endswith(".wav")
    with wave.open(str(tmp_path / "mix.wav")) as mix:
        assert (mix.getnchannels(), mix.getsampwidth(), mix.getcomptype()) == (2, 2, "NONE")
        assert mix.getframerate() >= 8000 and mix.getnframes() >= mix.getframerate() * 0.9
    # What the user hears: drums soloed at volume 1; vocals (1.5) silenced by the solo; bass muted; other unselected.
    assert url.endswith(f"/stems_mix/{name}")
    assert body == {"stems": {"vocals": {"gain": 0, "mute": False}, "drums": {"gain": 1, "mute": False},
                              "bass": {"gain": 0, "mute": True}}}
    assert (tmp_path / "mix.wav").read_bytes() == server_mix(url, body)
    stems_dir = live_server.data_dir / "static" / "stems" / name
    assert_mix_of(tmp_path / "mix.wav", stems_dir, {"drums": 1.0})
    heard_before = summed(stems_dir, {"vocals": 1.5, "drums": 1.0, "bass": 1.0})  # the old, volume-only mixdown
    assert np.abs(heard_before - summed(stems_dir, {"drums": 1.0})).max() > 0.01, "the stems are too quiet to tell"
    expect(page.locator(STATUS)).to_have_text("Mixed into a WAV file: drums.")

    stem(page, "drums").locator("[data-action=stem-solo]").click()  # no solo: every unmuted stem at its volume
    _, body, url = mixdown(page, tmp_path / "mix2.wav")
    assert body == {"stems": {"vocals": {"gain": 1.5, "mute": False}, "drums": {"gain": 1, "mute": False},
                              "bass": {"gain": 0, "mute": True}}}
    assert (tmp_path / "mix2.wav").read_bytes() == server_mix(url, body)
    assert_mix_of(tmp_path / "mix2.wav", stems_dir, {"vocals": 1.5, "drums": 1.0})
    expect(page.locator(STATUS)).to_have_text("Mixed into a WAV file: vocals, drums.")
    stem(page, "drums").locator("[data-action=stem-solo]").click()  # soloed again, as the README screenshot shows

    assert download(page, "mixer-zip-selected", tmp_path / "some.zip") == f"{name}_vocals+drums+bass.zip"
    with zipfile.ZipFile(tmp_path / "some.zip") as archive:
        assert archive.testzip() is None
        # Entries are named after the track (issue 16: a stem saved anywhere still says where it came from).
        assert archive.namelist() == [f"{name}_vocals.wav", f"{name}_drums.wav", f"{name}_bass.wav"]
        assert archive.read(f"{name}_drums.wav") == (stems_dir / "drums.wav").read_bytes()
    assert download(page, "mixer-zip-all", tmp_path / "all.zip") == f"{name}_stems.zip"
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == [f"{name}_{stem}.wav" for stem in ("bass", "drums", "other", "vocals")]
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


def test_silent_selections_ask_nothing_and_failed_downloads_are_explained(
        page: Page, live_server, tmp_path, browser_errors: list[str]) -> None:
    open_app(page, live_server)
    page.locator("[data-role=advanced] summary").click()
    choose_file(page, "[data-role=demucs-file]", "quiet take.wav", wav_bytes(1.0, rate=44100, channels=2))
    page.locator("[data-action=demucs-run]").click()
    expect(page.locator("[data-role=stems-title]")).to_have_text("Stems of quiet take.wav", timeout=JOB_TIMEOUT_MS)
    expect(page.locator(STEMS)).to_have_count(4)
    status = page.locator(STATUS)
    asked, saved = [], []
    page.on("request", lambda request: asked.append(request.url) if "/stems_any_" in request.url else None)
    page.on("download", lambda item: saved.append(item.suggested_filename))

    # vocals and drums muted, bass silenced by the solo of "other", which is not selected: nobody to hear.
    stem(page, "other").locator("[data-role=stem-select]").uncheck()
    for row in ("vocals", "drums"):
        stem(page, row).locator("[data-action=stem-mute]").click()
    stem(page, "other").locator("[data-action=stem-solo]").click()
    page.locator("[data-action=mixer-mixdown]").click()
    expect(status).to_have_text("None of the selected stems can be heard (muted, silenced by another stem's solo, "
                                "or at volume 0): nothing to mix.")
    expect(status).to_have_attribute("data-kind", "error")
    page.locator("[data-role=language]").select_option("ru")
    expect(status).to_have_text("Ни один из выбранных стемов не слышен (заглушён, выключен соло другого стема или "
                                "громкость 0): сводить нечего.")
    page.locator("[data-role=language]").select_option("en")
    page.wait_for_timeout(300)
    assert asked == [] and saved == [], "a silent selection went to the server"

    stem(page, "other").locator("[data-action=stem-solo]").click()  # bass is heard again, alone
    mixed, body, url = mixdown(page, tmp_path / "mix.wav")
    key = url.rsplit("/", 1)[1]
    assert url.endswith(f"/stems_any_mix/{key}") and mixed.startswith("quiet take_mix_vocals+drums+bass_")
    assert body == {"stems": {"vocals": {"gain": 0, "mute": True}, "drums": {"gain": 0, "mute": True},
                              "bass": {"gain": 1, "mute": False}}}
    assert (tmp_path / "mix.wav").read_bytes() == server_mix(url, body)
    stems_dir = live_server.data_dir / "static" / "stems_any" / key
    assert_mix_of(tmp_path / "mix.wav", stems_dir, {"bass": 1.0})

    page.route("**/stems_any_zip/**", lambda route: route.abort())
    page.locator("[data-action=mixer-zip-all]").click()
    expect(status).to_have_text("Could not reach the server. Check the connection and try again.")
    page.unroute("**/stems_any_zip/**")
    page.route("**/stems_any_mix/**", lambda route: route.fulfill(
        status=400, json={"ok": False, "error": "nothing to mix: every stem is muted or silent"}))
    page.locator("[data-action=mixer-mixdown]").click()
    expect(status).to_have_text("The server refused: nothing to mix: every stem is muted or silent")
    page.locator("[data-role=language]").select_option("ru")
    expect(status).to_have_text("Сервер отказал: nothing to mix: every stem is muted or silent")
    page.locator("[data-role=language]").select_option("en")
    page.unroute("**/stems_any_mix/**")
    shutil.rmtree(stems_dir)  # the set is gone from the server: its routes answer 404
    page.locator("[data-action=mixer-zip-selected]").click()
    expect(status).to_have_text("These stems are no longer on the server.")
    expect(status).to_have_attribute("data-kind", "error")
    assert len(saved) == 1, "only the good mixdown was saved"
    forgive(browser_errors, "Failed to load resource")
