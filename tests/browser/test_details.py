"""What a take tells (issue 16): the loudness choice (sent, kept), the file's LUFS and true peak and the generation
time on the card and in the chat; the models marked as here or to download with their size; a first download's
bytes and percent in the job's progress message."""
from __future__ import annotations

import json
import re
import urllib.request
from decimal import ROUND_HALF_UP, Decimal

from playwright.sync_api import Page, WebSocketRoute, expect

from .ui import generate, open_app, sent_submits, set_number, setting, submit, wait_state

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CARD = "[data-role=track-card]"


def shown(value: float, digits: int = 1) -> str:
    """A number as the page writes it in English: Intl rounds the number's shortest decimal form ("-8.85", not the
    binary double just above it) half away from zero."""
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def record(server, name: str) -> dict:
    """A track's JSON as the server serves it."""
    with _direct.open(f"{server.url}/static/audio/{name}.json") as answer:
        return json.load(answer)


def loudness_text(block: dict) -> str:
    """What the card says of `parameters.loudness`."""
    lufs, peak = shown(block["lufs"]), shown(block["true_peak_dbtp"])
    if block["target_lufs"] is None:
        return f"{lufs} LUFS (not normalised), true peak {peak} dBTP"
    target = shown(block["target_lufs"], 0)
    held = ", held back by the −1 dBTP ceiling" if block["peak_limited"] else ""
    return f"{lufs} LUFS (target {target}{held}), true peak {peak} dBTP"


def test_the_loudness_choice_and_what_the_card_and_chat_say(page: Page, live_server) -> None:
    payloads = sent_submits(page)
    open_app(page, live_server)
    loudness = setting(page, "loudness")
    expect(loudness).to_have_value("-14")
    assert loudness.locator("option").evaluate_all("nodes => nodes.map(n => n.value)") == ["-14", "-16", "-23", "off"]
    loudness.select_option("-16")
    message = generate(page, "loudness check: soft organ")
    assert payloads[-1]["loudness"] == "-16"
    meta = record(live_server, message.get_attribute("data-track"))
    block, timing = meta["parameters"]["loudness"], meta["timing"]
    assert block["target_lufs"] == -16.0
    expect(page.locator(f"{CARD} [data-param=loudness]")).to_have_text(loudness_text(block))
    expect(page.locator(f"{CARD} [data-param=timing]")).to_have_text(
        f"{shown(timing['generate_seconds'])} s generating ({shown(timing['total_seconds'])} s in all), "
        f"real-time factor {shown(timing['realtime_factor'], 2)}, {timing['device']}")
    expect(message.locator("[data-role=job-timing]")).to_have_text(
        f"Generated in {shown(timing['generate_seconds'])} s · real-time factor "
        f"{shown(timing['realtime_factor'], 2)} · cpu")

    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(loudness).to_have_value("-16")  # kept with the other settings
    expect(page.locator(f"{CARD} [data-param=timing]")).to_contain_text("real-time factor")  # the newest track
    loudness.select_option("off")
    message = generate(page, "loudness check: as it comes")
    assert payloads[-1]["loudness"] == "off"
    block = record(live_server, message.get_attribute("data-track"))["parameters"]["loudness"]
    expect(page.locator(f"{CARD} [data-param=loudness]")).to_have_text(loudness_text(block))
    page.locator("[data-role=language]").select_option("ru")
    expect(page.locator(f"{CARD} [data-param=loudness]")).to_contain_text("без нормализации")
    expect(message.locator("[data-role=job-timing]")).to_contain_text("коэффициент реального времени")
    page.locator("[data-role=language]").select_option("en")
    loudness.select_option("-14")


def test_the_models_here_and_to_download_are_marked(page: Page, start_server) -> None:
    server = start_server("--custom-model", "someone/musicgen-not-here")
    open_app(page, server)
    models = json.loads(page.locator("#boot").text_content())["models"]
    select, status = setting(page, "model"), page.locator("[data-role=model-status]")
    for model in models:
        option = select.locator(f'option[value="{model["key"]}"]')
        expect(option).to_have_attribute("data-cached", "true" if model["cached"] else "false")
        text = option.text_content()
        assert ("— here" in text) == model["cached"], text
        if model["size_bytes"]:
            assert re.search(r"\d (MB|GB)$", text), text
    missing = next(model for model in models if not model["cached"])
    assert missing["custom"] and missing["size_source"] == "unknown"
    expect(select.locator(f'option[value="{missing["key"]}"]')).to_have_text(f'{missing["key"]} — to download')
    select.select_option(missing["key"])
    expect(status).to_have_text("Not on this machine yet: the first generation downloads it.")
    refused = submit(page, "a model that is not here, offline")
    wait_state(refused, "refused")
    expect(refused.locator("[data-role=job-error]")).to_contain_text("This model is not on this machine")
    select.select_option("small")
    expect(status).to_have_text("On this machine: it loads without a download.")
    page.locator("[data-role=language]").select_option("ru")
    expect(status).to_have_text("Есть на компьютере: загрузится без скачивания.")
    expect(refused.locator("[data-role=job-error]")).to_contain_text("Этой модели нет на компьютере")


def test_a_first_download_shows_bytes_and_percent(page: Page, live_server) -> None:
    """The tiny hub has every model, so the server's progress frames are turned into a download's on their way."""
    total = 1_234_567_890

    def route(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and message.startswith('42["progress",'):
                name, payload = json.loads(message[2:])
                done = min(int(total * payload["progress"] * 10), total)
                payload.update(phase="downloading", downloaded_bytes=done, total_bytes=total)
                message = "42" + json.dumps([name, payload])
            socket.send(message)

        server.on_message(from_server)
        socket.on_message(server.send)

    page.route_web_socket(re.compile(r"/socket\.io/"), route)
    open_app(page, live_server)
    set_number(page, "duration", 30)
    setting(page, "preview").uncheck()
    message = submit(page, "download check: first use")
    status = message.locator("[data-role=job-status]")
    expect(status).to_have_text(re.compile(r"^Downloading the model: [\d.]+ (MB|GB) of 1\.2 GB \(\d+%\)$"),
                                timeout=60_000)
    page.locator("[data-role=language]").select_option("ru")
    expect(status).to_have_text(re.compile(r"^Скачивание модели: [\d,]+ (МБ|ГБ) из 1,2 ГБ \(\d+%\)$"))
    page.locator("[data-role=language]").select_option("en")
    page.locator("[data-action=cancel-job]").click()
    wait_state(message, "cancelled")
    setting(page, "preview").check()
