"""Listen while it generates: the live preview plays before the job ends, then the final file takes over at the
same position; Cancel stops both; the setting off means no preview at all; another tab listens with the queue's
Listen; the stream engine buffers (never skips) when audio comes slower than real time."""
from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from .ui import (
    JOB_TIMEOUT_MS,
    choose_file,
    open_app,
    sent_submits,
    set_number,
    setting,
    submit,
    wait_state,
    watch_attribute,
    wav_bytes,
)

PLAYER = "[data-role=player]"
AUDIO = "[data-role=player-audio]"
QUEUE_ITEMS = "[data-role=queue] [data-role=queue-item]"
LOCALES = Path(__file__).resolve().parents[2] / "static" / "locales"
#: Long enough for a job of a couple of seconds on the tiny models (they make about ten times real time)...
LONG_S = 20
#: ... or much longer on a busy machine.
LONG_JOB_TIMEOUT_MS = 240_000

#: The preview's clock while the queue still shows the job running: [seconds played, the job still running].
LIVE_CLOCK = """() => {
  const time = document.querySelector("[data-role=player]").dataset.liveTime;
  const running = document.querySelector("[data-role=queue-item][data-state=running]") !== null;
  return [time === undefined ? null : Number(time), running];
}"""


#: Record the position of the file's player each time it starts playing.
RECORD_PLAYS = """(audio) => {
  const plays = [];
  audio.addEventListener("play", () => plays.push(audio.currentTime));
  return plays;
}"""


def live_clock(page: Page) -> tuple[float | None, bool]:
    """Seconds of preview played and whether the queue shows the job running, read together."""
    seconds, running = page.evaluate(LIVE_CLOCK)
    return seconds, running


def wait_live_time(page: Page, seconds: float) -> None:
    """Wait until the preview has played `seconds` while its job still runs."""
    page.wait_for_function(
        f"""() => {{ const [time, running] = ({LIVE_CLOCK})();
               if (!running) throw new Error("the job ended before the preview played {seconds} s");
               return time !== null && time >= {seconds}; }}""",
        timeout=JOB_TIMEOUT_MS)


def test_the_preview_plays_while_generating_then_the_file_takes_over(page: Page, live_server) -> None:
    payloads = sent_submits(page)
    open_app(page, live_server)
    expect(setting(page, "preview")).to_be_checked()
    set_number(page, "duration", LONG_S)
    message = submit(page, "live check: slow evolving pads")
    player = page.locator(PLAYER)
    expect(player).to_have_attribute("data-live", "playing", timeout=JOB_TIMEOUT_MS)
    expect(player.locator("[data-role=player-live]")).to_be_visible()
    card = page.locator("[data-role=track-card]")
    expect(card.locator("[data-role=track-prompt]")).to_have_text("live check: slow evolving pads")
    expect(page.locator("[data-role=card-actions]")).to_be_hidden()

    wait_live_time(page, 0.3)
    first, _ = live_clock(page)
    wait_live_time(page, first + 0.5)
    second, running = live_clock(page)
    assert running and second > first, "the preview's clock advanced while the job still ran"
    assert payloads[-1]["preview"] is True

    expect_hand_over(page, message, second)
    expect(card).to_have_attribute("data-track", message.get_attribute("data-track"))
    expect(page.locator("[data-role=card-actions]")).to_be_visible()
    page.locator("[data-action=player-toggle]").click()


def test_an_append_job_hands_over_after_the_clip_it_continues(page: Page, live_server) -> None:
    """The final file starts with the whole uploaded clip: the preview's position lands after it."""
    open_app(page, live_server)
    choose_file(page, "[data-purpose=continuation] [data-role=upload-input]", "intro.wav", wav_bytes(2.0))
    expect(page.locator("[data-purpose=continuation]")).to_have_attribute("data-state", "ready")
    expect(page.locator("[data-role=append]")).to_be_checked()
    set_number(page, "duration", LONG_S)
    message = submit(page, "live check: continue the intro")
    wait_live_time(page, 0.3)
    played, _ = live_clock(page)
    expect_hand_over(page, message, played + 2.0)
    page.locator("[data-action=player-toggle]").click()


def expect_hand_over(page: Page, message: Locator, at_least: float) -> None:
    """The job ends: the player switches from the preview to the file and plays on from `at_least` seconds or later."""
    player = page.locator(PLAYER)
    audio = page.locator(AUDIO)
    plays = audio.evaluate_handle(RECORD_PLAYS)
    states = watch_attribute(page, PLAYER, "data-live")
    expect(message).to_have_attribute("data-state", "done", timeout=LONG_JOB_TIMEOUT_MS)
    expect(player).to_have_attribute("data-live", "off")
    expect(audio).to_have_attribute("src", re.compile(rf"^/static/audio/{message.get_attribute('data-track')}\.wav$"))
    if "ended" in states.json_value():
        # A busy machine made the audio slower than real time: the preview played it all as it came, and the
        # file waits at its end.
        page.wait_for_function("audio => audio.duration > 0 && audio.currentTime === audio.duration",
                               arg=audio.element_handle())
        return
    page.wait_for_function("plays => plays.length > 0", arg=plays)
    handed = plays.json_value()[0]
    assert handed >= at_least, f"the file went on from the preview's position: {handed} s, not {at_least} s or later"
    page.wait_for_function("([audio, from]) => audio.currentTime > from + 0.2", arg=[audio.element_handle(), handed])


def received_previews(page: Page) -> list[str]:
    """Collect the `audio_preview` frames the page receives from now on (their text part)."""
    frames: list[str] = []

    def on_frame(frame: object) -> None:
        if isinstance(frame, str) and '"audio_preview"' in frame:
            frames.append(frame)

    page.on("websocket", lambda socket: socket.on("framereceived", on_frame))
    return frames


def test_cancel_stops_the_preview_and_the_job(page: Page, live_server) -> None:
    open_app(page, live_server)
    setting(page, "mbd").check()
    set_number(page, "duration", LONG_S)
    player = page.locator(PLAYER)
    toggle = page.locator("[data-action=player-toggle]")

    message = submit(page, "live cancel: the page's Cancel button")
    expect(player).to_have_attribute("data-live", "playing", timeout=JOB_TIMEOUT_MS)
    expect(player.locator("[data-role=live-mbd]")).to_be_visible()
    page.locator("[data-action=cancel-job]").click()
    expect(player).to_have_attribute("data-live", "cancelled")
    stopped = player.get_attribute("data-live-time")
    expect(toggle).to_be_disabled()
    wait_state(message, "cancelled")
    page.wait_for_timeout(400)
    assert player.get_attribute("data-live-time") == stopped, "the preview's clock stopped with the cancel"

    setting(page, "mbd").uncheck()
    message = submit(page, "live cancel: the queue's Cancel button")
    expect(player).to_have_attribute("data-live", "playing", timeout=JOB_TIMEOUT_MS)
    expect(player.locator("[data-role=live-mbd]")).to_be_hidden()
    page.locator(QUEUE_ITEMS).first.locator("[data-action=cancel-queued]").click()
    expect(player).to_have_attribute("data-live", "cancelled")
    wait_state(message, "cancelled")
    expect(toggle).to_be_disabled()


def test_with_the_setting_off_no_preview_is_made_or_played(page: Page, live_server) -> None:
    payloads = sent_submits(page)
    previews = received_previews(page)
    open_app(page, live_server)
    setting(page, "preview").uncheck()
    states = watch_attribute(page, PLAYER, "data-live")
    set_number(page, "duration", 2)
    message = submit(page, "no preview: short bell")
    wait_state(message, "done")
    assert payloads[-1]["preview"] is False
    assert previews == [], "the server made no preview"
    assert states.json_value() == [], "the player never went live"
    expect(page.locator(AUDIO)).to_have_attribute("src", f"/static/audio/{message.get_attribute('data-track')}.wav")

    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(setting(page, "preview")).not_to_be_checked()


def test_another_tab_listens_with_the_queues_listen_action(new_page, live_server) -> None:
    """The second tab is a Russian phone: every new string in Russian, nothing wider than the screen."""
    russian = json.loads((LOCALES / "ru.json").read_text(encoding="utf-8"))
    first, second = new_page(), new_page(390, 844)
    open_app(first, live_server)
    open_app(second, live_server)
    second.locator("[data-role=language]").select_option("ru")
    expect(setting(second, "preview").locator("xpath=..")).to_have_text(russian["field.preview"])
    set_number(first, "duration", LONG_S)

    setting(first, "preview").uncheck()
    quiet = submit(first, "tab one: made without a preview")
    row = second.locator(QUEUE_ITEMS).first
    expect(row).to_have_attribute("data-state", "running", timeout=JOB_TIMEOUT_MS)
    # The queue says which jobs make a preview: one made without it offers no Listen at all.
    expect(row.locator("[data-action=listen-job]")).to_have_count(0)
    expect(second.locator(PLAYER)).to_have_attribute("data-live", "off")
    first.locator("[data-action=cancel-job]").click()
    wait_state(quiet, "cancelled")

    setting(first, "preview").check()
    job = submit(first, "tab one: long drone")
    row = second.locator(QUEUE_ITEMS).first
    expect(row).to_have_attribute("data-state", "running", timeout=JOB_TIMEOUT_MS)
    expect(row.locator("[data-action=listen-job]")).to_have_text(russian["queue.listen"])
    row.locator("[data-action=listen-job]").click()
    player = second.locator(PLAYER)
    expect(player).to_have_attribute("data-live", "playing", timeout=JOB_TIMEOUT_MS)
    expect(player.locator("[data-role=live-status]")).to_have_text(russian["live.playing"])
    expect(second.locator("[data-role=track-card] [data-role=track-title]")).to_have_text(russian["live.title"])
    expect(row.locator("[data-action=listen-job]")).to_be_hidden()
    wait_live_time(second, 0.3)
    assert second.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")

    expect(job).to_have_attribute("data-state", "done", timeout=LONG_JOB_TIMEOUT_MS)
    expect(player).to_have_attribute("data-live", "off")
    expect(second.locator(AUDIO)).to_have_attribute("src", f"/static/audio/{job.get_attribute('data-track')}.wav")
    second.wait_for_function("audio => audio.ended || !audio.paused", arg=second.locator(AUDIO).element_handle())
    first.locator("[data-action=player-toggle]").click()


#: Feed the stream engine chunks of a sine tone in real time (the page's own module, in this page), recording
#: its status changes and sampling its clock; returns them, the final position and the seconds it took.
STREAM_SCENARIO = """async ([chunkSeconds, count, everyMs, pauseAfter]) => {
  const { createStream } = await import("/static/js/player-stream.js");
  const rate = 32000;
  const frames = Math.round(chunkSeconds * rate);
  const cycle = (2 * Math.PI * 440) / rate;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const changes = [];
  const stream = createStream(() => changes.push(stream.status()));
  stream.unlock();
  stream.begin(true);
  const started = performance.now();
  const trace = [];
  let sampling = true;
  (async () => {
    while (sampling) {
      trace.push([stream.status(), stream.position(), stream.buffered()]);
      await sleep(10);
    }
  })();
  let paused = null;
  for (let index = 0; index < count; index += 1) {
    const tone = new Float32Array(frames).map((_, n) => 0.2 * Math.sin(cycle * (index * frames + n)));
    stream.push({ start: index * frames, rate, data: [tone] });
    if (index === pauseAfter) {
      await sleep(150);
      stream.pause();
      await sleep(200);
      const at = stream.position();
      await sleep(300);
      paused = [at, stream.position(), stream.status()];
      stream.play();
    }
    await sleep(everyMs);
  }
  stream.complete();
  while (stream.status() !== "ended") await sleep(10);
  sampling = false;
  const final = stream.position();
  stream.stop();
  return { trace, changes, final, paused, seconds: (performance.now() - started) / 1000, status: stream.status() };
}"""


def run_stream(page: Page, chunk_s: float, count: int, every_ms: int, pause_after: int = -1) -> dict:
    """Play a synthetic stream through the page's engine."""
    return page.evaluate(STREAM_SCENARIO, [chunk_s, count, every_ms, pause_after])


def test_the_stream_engine_plays_chunks_back_to_back_when_they_come_in_time(page: Page, live_server) -> None:
    open_app(page, live_server)
    result = run_stream(page, 0.25, 8, 100, pause_after=2)
    assert result["changes"] == ["buffering", "playing", "paused", "playing", "ended", "idle"], \
        "no wait once the audio was ahead of the clock"
    at, later, status = result["paused"]
    assert status == "paused" and later == at, "a pause holds the clock"
    assert result["final"] == 2.0 and result["status"] == "idle"
    assert 2.0 + 0.3 <= result["seconds"] < 2.0 + 0.3 + 1.5, "played in real time, the pause included"
    positions = [position for _, position, _ in result["trace"]]
    assert positions == sorted(positions)


def test_the_stream_engine_buffers_instead_of_skipping_when_chunks_are_late(page: Page, live_server) -> None:
    """0.2 s of audio every 0.6 s (generation at a third of real time): it waits, shows buffering, skips nothing."""
    open_app(page, live_server)
    result = run_stream(page, 0.2, 6, 600)
    trace = result["trace"]
    changes = result["changes"]
    assert changes.count("buffering") >= 1 + 3, f"it waited for the late chunks (fewer as its lead grows): {changes}"
    for status, position, buffered in trace:
        assert position <= buffered + 1e-9, "the clock never passes the audio received"
        if status == "buffering" and buffered:
            assert position == buffered, "while it waits the clock stays at the end of the audio received"
    positions = [position for _, position, _ in trace]
    assert positions == sorted(positions), "the clock never goes back"
    assert abs(result["final"] - 1.2) < 1e-9, "every chunk was played to its end"
