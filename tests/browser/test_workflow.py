"""The workflow in the page: takes side by side with A/B switching, regenerate from a waveform click, the card's
Continue / Use as melody / Send to continuation, the loop preview, the song timeline and the prompt list."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .ui import (
    JOB_TIMEOUT_MS,
    SYSTEM_MESSAGES,
    USER_MESSAGES,
    generate,
    open_app,
    set_number,
    setting,
    submit,
    wait_state,
)

AUDIO = "document.querySelector('[data-role=player-audio]')"


def track_meta(page: Page, name: str) -> dict:
    """A track's JSON, fetched by the page."""
    return page.evaluate("(name) => fetch(`/static/audio/${name}.json`).then((answer) => answer.json())", name)


def click_waveform_at(page: Page, fraction: float) -> None:
    """Seek by clicking the waveform once the file's metadata is in."""
    page.wait_for_function(f"() => {AUDIO}.readyState >= 1 && {AUDIO}.duration > 0")
    waveform = page.locator("[data-role=waveform]")
    box = waveform.bounding_box()
    waveform.click(position={"x": box["width"] * fraction, "y": box["height"] / 2})


def fixed_seed(page: Page, seed: int) -> None:
    """Turn auto seed off and type a seed."""
    setting(page, "seed_auto").uncheck()
    setting(page, "seed").fill(str(seed))


def test_takes_are_one_answer_and_the_player_switches_a_b_at_the_same_position(page: Page, live_server,
                                                                             screenshot) -> None:
    open_app(page, live_server)
    setting(page, "preview").uncheck()
    fixed_seed(page, 321)
    setting(page, "variations").fill("3")
    message = generate(page, "three takes of a drum groove", duration=3)

    takes = message.locator("[data-role=job-takes] [data-action=open-track]")
    expect(takes).to_have_text(["A", "B", "C"])
    names = [takes.nth(index).get_attribute("data-track") for index in range(3)]
    assert len(set(names)) == 3 and [track_meta(page, name)["parameters"]["seed"] for name in names] == [321, 322, 323]
    switch = page.locator("[data-role=player-takes] [data-take]")
    expect(switch).to_have_text(["A", "B", "C"])
    expect(switch.nth(0)).to_have_attribute("aria-pressed", "true")

    click_waveform_at(page, 0.5)
    before = page.evaluate(f"() => {AUDIO}.currentTime")
    assert 1.2 < before < 1.8
    switch.nth(1).click()
    expect(page.locator("[data-role=track-card] [data-role=track-title]")).to_have_text(names[1])
    expect(switch.nth(1)).to_have_attribute("aria-pressed", "true")
    page.wait_for_function(f"() => {AUDIO}.src.includes('{names[1]}') && {AUDIO}.readyState >= 1")
    page.wait_for_function(f"(before) => Math.abs({AUDIO}.currentTime - before) < 0.05", arg=before)
    takes.nth(2).click()
    expect(switch.nth(2)).to_have_attribute("aria-pressed", "true")
    screenshot("takes")


def test_a_click_on_the_waveform_regenerates_from_there(page: Page, live_server) -> None:
    open_app(page, live_server)
    setting(page, "preview").uncheck()
    fixed_seed(page, 77)
    first = generate(page, "regenerate me: calm pad", duration=2)
    name = first.get_attribute("data-track")
    regenerate = page.locator("[data-workflow=regenerate]")
    click_waveform_at(page, 0.6)  # 1.2 s: away from a whole second, where the label could round either way
    expect(regenerate).to_be_enabled()
    expect(regenerate).to_have_text(re.compile(r"^Regenerate from 0:01$"))
    count = page.locator(SYSTEM_MESSAGES).count()
    regenerate.click()
    message = page.locator(SYSTEM_MESSAGES).nth(count)
    wait_state(message, "done")
    meta = track_meta(page, message.get_attribute("data-track"))
    assert meta["regenerated_from"]["track"] == name and abs(meta["regenerated_from"]["cut_at"] - 1.2) < 0.1
    assert meta["duration_seconds"] == 2.0, "the same length as before"


def test_continue_and_the_track_references_from_the_card(page: Page, live_server) -> None:
    open_app(page, live_server)
    setting(page, "preview").uncheck()
    first = generate(page, "continue me: slow blues", duration=1)
    name = first.get_attribute("data-track")
    count = page.locator(SYSTEM_MESSAGES).count()
    page.locator("[data-workflow=continue]").click()
    message = page.locator(SYSTEM_MESSAGES).nth(count)
    wait_state(message, "done")
    meta = track_meta(page, message.get_attribute("data-track"))
    assert meta["source_track"] == name and meta["duration_seconds"] == 2.0

    page.locator("[data-workflow=continuation]").click()
    reference = page.locator('[data-ref="continue_track"]')
    expect(reference).to_be_visible()
    expect(reference.locator("[data-role=track-ref-text]")).to_contain_text(message.get_attribute("data-track"))
    page.locator("[data-workflow=melody]").click()
    expect(page.locator('[data-ref="melody_track"]')).to_be_visible()
    reference.locator("[data-action=clear-track-ref]").click()
    expect(reference).to_be_hidden()


def test_a_loop_plays_gaplessly_in_the_loop_preview(page: Page, live_server) -> None:
    open_app(page, live_server)
    setting(page, "preview").uncheck()
    setting(page, "bpm").fill("120")
    setting(page, "loop").check()
    refused = submit(page, "a loop without its bars")
    wait_state(refused, "refused")
    expect(refused).to_contain_text("loop.bars")
    setting(page, "bars").fill("1")
    message = generate(page, "loop me: four on the floor", duration=1)
    meta = track_meta(page, message.get_attribute("data-track"))
    assert meta["duration_seconds"] == 2.0 and meta["loop"]["bpm"] == 120
    assert meta["musical"]["model_prompt"] == "loop me: four on the floor, 120 bpm"

    preview = page.locator("[data-action=player-loop-preview]")
    expect(preview).to_be_visible()
    preview.click()
    player = page.locator("[data-role=player]")
    expect(preview).to_have_attribute("aria-pressed", "true")
    expect(player).to_have_attribute("data-loop-seconds", "2.000", timeout=JOB_TIMEOUT_MS)
    page.wait_for_timeout(2500)  # past the wrap: the source loops on by itself
    expect(player).to_have_attribute("data-loop-preview", "playing")
    preview.click()
    expect(player).to_have_attribute("data-loop-preview", "off")


def test_the_timeline_makes_one_job_of_segments(page: Page, live_server, screenshot) -> None:
    open_app(page, live_server)
    setting(page, "preview").uncheck()
    add = page.locator("[data-action=segment-add]")
    for _ in range(3):
        add.click()
    rows = page.locator("[data-role=segment]")
    expect(rows).to_have_count(3)
    for index, (prompt, seconds) in enumerate([("intro", 1), ("verse", 2), ("never", 5)]):
        rows.nth(index).locator("[data-role=segment-prompt]").fill(prompt)
        rows.nth(index).locator("[data-role=segment-seconds]").fill(str(seconds))
    expect(page.locator("[data-role=timeline-total]")).to_contain_text("8 s")
    rows.nth(2).locator("[data-action=segment-remove]").click()
    expect(rows).to_have_count(2)
    expect(page.locator("[data-role=timeline-total]")).to_contain_text("3 s")
    screenshot("workflow-form", page.locator("[data-role=workflow]"))
    message = generate(page, "a short song", duration=1)
    meta = track_meta(page, message.get_attribute("data-track"))
    assert [(part["prompt"], part["start_seconds"]) for part in meta["segments"]] == [("intro", 0.0), ("verse", 1.0)]
    assert meta["duration_seconds"] == 3.0


def test_a_prompt_list_queues_one_job_per_line_in_order(page: Page, live_server) -> None:
    open_app(page, live_server)
    setting(page, "preview").uncheck()
    set_number(page, "duration", 1)
    setting(page, "prompt_list").check()
    users = page.locator(USER_MESSAGES).count()
    systems = page.locator(SYSTEM_MESSAGES).count()
    page.locator("[data-role=prompt]").fill("first line tune\n\nsecond line tune\nthird line tune")
    page.locator("[data-role=submit]").click()
    expect(page.locator(SYSTEM_MESSAGES)).to_have_count(systems + 3, timeout=JOB_TIMEOUT_MS)
    for index in range(3):
        wait_state(page.locator(SYSTEM_MESSAGES).nth(systems + index), "done")
    texts = page.locator(f"{USER_MESSAGES} [data-role=message-text]").all_text_contents()[users:]
    assert texts == ["first line tune", "second line tune", "third line tune"]
