"""The settings form: server ranges (one range for the form and the server), models and the melody-only audio
prompt, Top K / Top P exclusivity, seed auto / manual / roll (Auto-seed survives a reload), persistence,
"Restore last run", every control reaching the server, drag & drop and uploads."""
from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from .ui import (
    choose_file,
    drop_file,
    forgive,
    generate,
    open_app,
    sent_submits,
    set_number,
    setting,
    submit,
    wait_state,
    wav_bytes,
)

RANGES = ("duration", "top_k", "top_p", "temperature", "cfg_coef")


def boot(page: Page) -> dict:
    """The boot config the server rendered into the page."""
    return json.loads(page.locator("#boot").text_content())


def row(page: Page, name: str):
    """The slider + number row of a range."""
    return page.locator(f'[data-role=range][data-name="{name}"]')


def test_ranges_and_models_come_from_the_server(page: Page, live_server) -> None:
    open_app(page, live_server)
    config = boot(page)
    for name in RANGES:
        expected = config["ranges"][name]
        for role in ("slider", "number"):
            control = page.locator(f'[data-role={role}][data-name="{name}"]')
            assert float(control.get_attribute("min")) == expected["min"], name
            assert float(control.get_attribute("max")) == expected["max"], name
    longest = str(config["ranges"]["duration"]["max"])
    set_number(page, "duration", 99999)
    expect(row(page, "duration").locator("[data-role=number]")).to_have_value(longest)
    expect(row(page, "duration").locator("[data-role=slider]")).to_have_value(longest)
    expect(page.locator("[data-role=toast]").last).to_contain_text(longest)

    options = setting(page, "model").locator("option")
    assert options.evaluate_all("nodes => nodes.map(n => n.value)") == [model["key"] for model in config["models"]]
    audio_prompt = page.locator("[data-role=upload][data-purpose=audioPrompt]")
    for model in config["models"]:
        setting(page, "model").select_option(model["key"])
        expect(audio_prompt).to_be_visible() if model["melody"] else expect(audio_prompt).to_be_hidden()


def test_top_k_and_top_p_exclude_each_other_both_ways(page: Page, live_server) -> None:
    payloads = sent_submits(page)
    open_app(page, live_server)
    hint = page.locator("[data-role=sampling-hint]")
    expect(row(page, "top_k")).to_have_attribute("data-inactive", "true")
    expect(row(page, "top_p")).to_have_attribute("data-inactive", "false")
    expect(hint).to_contain_text("Top P is used")

    set_number(page, "top_k", 50)
    expect(row(page, "top_k")).to_have_attribute("data-inactive", "false")
    expect(row(page, "top_p")).to_have_attribute("data-inactive", "true")
    expect(hint).to_contain_text("Top K is used")
    set_number(page, "duration", 1)
    wait_state(submit(page, "sampling check: top k"), "done")
    assert payloads[-1]["values"]["top_k"] == 50 and payloads[-1]["values"]["top_p"] == 0
    expect(page.locator("[data-param=top_k]")).to_have_text("50")

    page.locator('[data-role=slider][data-name="top_p"]').fill("0.5")
    expect(row(page, "top_p")).to_have_attribute("data-inactive", "false")
    expect(row(page, "top_k")).to_have_attribute("data-inactive", "true")
    expect(hint).to_contain_text("Top P is used")
    set_number(page, "top_p", 0)
    expect(row(page, "top_k")).to_have_attribute("data-inactive", "false")


def test_seed_auto_is_a_preference_apart_from_the_last_seed(page: Page, live_server) -> None:
    payloads = sent_submits(page)
    open_app(page, live_server)
    auto, seed = setting(page, "seed_auto"), setting(page, "seed")
    expect(auto).to_be_checked()
    expect(seed).to_be_disabled()

    page.locator("[data-action=roll-seed]").click()
    expect(auto).not_to_be_checked()
    expect(seed).to_be_enabled()
    rolled = int(seed.input_value())
    assert 0 <= rolled < 100_000_000
    auto.check()

    message = generate(page, "seed check")
    assert payloads[-1]["values"]["seed"] == -1
    shown = page.locator("[data-role=last-seed-value]")
    expect(shown).to_have_text(re.compile(r"^\d+$"))
    expect(message).to_contain_text(f"seed {shown.text_content()}")
    expect(auto).to_be_checked()
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(setting(page, "seed_auto")).to_be_checked()

    page.locator("[data-action=use-last-seed]").click()
    expect(setting(page, "seed_auto")).not_to_be_checked()
    expect(setting(page, "seed")).to_have_value(shown.text_content())


def test_every_control_reaches_the_server_persists_and_restores(page: Page, live_server) -> None:
    payloads = sent_submits(page)
    open_app(page, live_server)
    set_number(page, "top_k", 40)
    set_number(page, "temperature", 0.9)
    set_number(page, "cfg_coef", 3.5)
    setting(page, "seed_auto").uncheck()
    setting(page, "seed").fill("7")
    setting(page, "artist_enabled").check()
    setting(page, "artist").fill("Test Band")
    setting(page, "format").select_option("flac")
    setting(page, "sample_rate").select_option("16000")
    setting(page, "stereo").uncheck()
    setting(page, "auto_tune").uncheck()
    setting(page, "mbd").check()
    message = generate(page, "controls check: marimba")

    sent = payloads[-1]
    assert sent["values"] == {"duration": 1, "top_k": 40, "top_p": 0, "temperature": 0.9, "cfg_coef": 3.5, "seed": 7}
    assert (sent["format"], sent["sample_rate"], sent["keep_mono"], sent["auto_tune"], sent["mbd"], sent["artist"]) == (
        "flac", "16000", True, False, True, "Test Band")
    expect(message.locator("[data-action=open-track]")).to_have_text(re.compile(r"^Test-Band_small_7_.*\.flac$"))
    card = page.locator("[data-role=track-card]")
    for param, value in {"format": "FLAC", "sample_rate": "16000 Hz", "channels": "1", "seed": "7", "top_k": "40",
                         "temperature": "0.9", "cfg_coef": "3.5", "artist": "Test Band", "auto_tune": "off",
                         "mbd": "applied"}.items():
        expect(card.locator(f"[data-param={param}]")).to_have_text(value)

    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(setting(page, "format")).to_have_value("flac")
    expect(setting(page, "artist")).to_have_value("Test Band")
    expect(page.locator('[data-role=number][data-name="cfg_coef"]')).to_have_value("3.5")
    expect(setting(page, "stereo")).not_to_be_checked()

    setting(page, "format").select_option("wav")
    set_number(page, "cfg_coef", 6)
    setting(page, "seed_auto").check()
    page.locator("[data-action=restore-last-run]").click()
    expect(setting(page, "format")).to_have_value("flac")
    expect(page.locator('[data-role=number][data-name="cfg_coef"]')).to_have_value("3.5")
    expect(setting(page, "seed_auto")).not_to_be_checked()
    expect(setting(page, "seed")).to_have_value("7")
    expect(page.locator("[data-role=prompt]")).to_have_value("controls check: marimba")


def test_a_new_browser_starts_from_the_servers_last_run(new_page, live_server) -> None:
    first = new_page()
    open_app(first, live_server)
    setting(first, "format").select_option("mp3")
    set_number(first, "cfg_coef", 5.5)
    generate(first, "last run: kalimba")
    fresh = new_page()
    open_app(fresh, live_server, new_browser=True)
    expect(setting(fresh, "format")).to_have_value("mp3")
    expect(fresh.locator('[data-role=number][data-name="cfg_coef"]')).to_have_value("5.5")


def test_drop_and_uploads_set_the_audio_prompt_or_the_continuation(page: Page, live_server, browser_errors) -> None:
    open_app(page, live_server)
    continuation = page.locator("[data-role=upload][data-purpose=continuation]")
    audio_prompt = page.locator("[data-role=upload][data-purpose=audioPrompt]")

    drop_file(page, "[data-role=composer]", "notes.txt", b"not audio", "text/plain")
    expect(page.locator("[data-role=toast]").last).to_contain_text("not an audio file")

    drop_file(page, "[data-role=composer]", "intro.wav", wav_bytes(1.0))
    expect(continuation).to_have_attribute("data-state", "ready")
    expect(continuation.locator("[data-role=upload-status]")).to_have_text("intro.wav · 1.0 s")
    expect(page.locator("[data-role=append]")).to_be_checked()
    message = generate(page, "append check: carry on")
    expect(message.locator("[data-i18n='note.continuation']")).to_have_count(1)
    expect(page.locator("[data-param=continuation]")).to_contain_text("intro.wav")

    continuation.locator("[data-action=clear-upload]").click()
    expect(page.locator("[data-role=append]")).to_be_disabled()
    setting(page, "model").select_option("melody")
    drop_file(page, "[data-role=composer]", "hum.wav", wav_bytes(1.0, frequency=220))
    expect(audio_prompt).to_have_attribute("data-state", "ready")
    expect(continuation).not_to_have_attribute("data-state", "ready")
    generate(page, "melody check: follow the hum")
    expect(page.locator("[data-param=audio_prompt]")).to_have_text("hum.wav")
    expect(page.locator("[data-param=model]")).to_have_text("melody")

    choose_file(page, "[data-purpose=audioPrompt] [data-role=upload-input]", "broken.wav", b"RIFF....WAVEjunk")
    expect(audio_prompt).to_have_attribute("data-state", "error")
    expect(audio_prompt.locator("[data-role=upload-status]")).to_contain_text("broken.wav was refused")
    forgive(browser_errors, "status of 400")
