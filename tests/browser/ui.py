"""Helpers the browser tests share: open the app, set controls, submit prompts, follow a job, make audio files.

Selectors use the page's behaviour hooks (data-role / data-action) and ARIA roles, never CSS classes.
"""
from __future__ import annotations

import base64
import io
import json
import math
import struct
import wave

from playwright.sync_api import JSHandle, Locator, Page, expect

#: Generous: the first job of a server also loads the (tiny) model.
JOB_TIMEOUT_MS = 60_000
SYSTEM_MESSAGES = "[data-role=message][data-kind=system]"
USER_MESSAGES = "[data-role=message][data-kind=user]"


#: localStorage key of the form values (static/js/store.js prefix + settings.js key).
SETTINGS_KEY = "acw.settings.v1"


def open_app(page: Page, server, path: str = "/", *, new_browser: bool = False) -> None:
    """Load the page and wait until every module started and the socket is connected.

    A new browser fills the form from the server's last run (another test's, on the shared server);
    unless ``new_browser``, the page acts as a returning browser whose saved form is the defaults.
    """
    if not new_browser:
        page.add_init_script(
            f"localStorage.getItem('{SETTINGS_KEY}') ?? localStorage.setItem('{SETTINGS_KEY}', '{{}}')")
    page.goto(server.url + path)
    page.wait_for_selector("html[data-ready=true]")
    expect(page.locator("[data-role=connection]")).to_have_attribute("data-state", "connected")


def set_number(page: Page, name: str, value: object) -> None:
    """Type into the number box of a slider pair and commit it (the change event clamps and syncs)."""
    box = page.locator(f'[data-role=number][data-name="{name}"]')
    box.fill(str(value))
    box.dispatch_event("change")


def setting(page: Page, name: str) -> Locator:
    """A simple control of the settings form."""
    return page.locator(f'[data-setting="{name}"]')


def submit(page: Page, prompt: str) -> Locator:
    """Type a prompt, press Generate and return the job's system message, located by its job id."""
    count = page.locator(SYSTEM_MESSAGES).count()
    page.locator("[data-role=prompt]").fill(prompt)
    page.locator("[data-role=submit]").click()
    return job_message(page, count)


def job_message(page: Page, previous_count: int) -> Locator:
    """The system message of the job submitted after `previous_count` messages, once the server named it."""
    page.wait_for_function(
        """([selector, index]) => { const node = document.querySelectorAll(selector)[index];
             return node && (node.dataset.jobId || node.dataset.state === "refused"); }""",
        arg=[SYSTEM_MESSAGES, previous_count], timeout=JOB_TIMEOUT_MS)
    newest = page.locator(SYSTEM_MESSAGES).nth(previous_count)
    job_id = newest.get_attribute("data-job-id")
    return page.locator(f'{SYSTEM_MESSAGES}[data-job-id="{job_id}"]') if job_id else newest


def wait_state(message: Locator, state: str) -> None:
    """Wait for a job message to reach a state (done, failed, cancelled ...)."""
    expect(message).to_have_attribute("data-state", state, timeout=JOB_TIMEOUT_MS)


def generate(page: Page, prompt: str, duration: int = 1) -> Locator:
    """Generate a short track with the current settings and return its finished job message."""
    set_number(page, "duration", duration)
    message = submit(page, prompt)
    wait_state(message, "done")
    return message


def last_prompt(page: Page) -> Locator:
    """The text of the newest prompt in the chat."""
    return page.locator(USER_MESSAGES).last.locator("[data-role=message-text]")


def stored_chat(page: Page) -> list[dict]:
    """The chat records in localStorage."""
    return json.loads(page.evaluate("localStorage.getItem('acw.chat.v2')") or "[]")


def wav_bytes(seconds: float, rate: int = 32000, frequency: float = 440.0, channels: int = 1) -> bytes:
    """A 16-bit PCM sine tone as WAV bytes."""
    frames = int(seconds * rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (int(12000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(frames))
        out.writeframes(b"".join(struct.pack("<h", value) * channels for value in samples))
    return buffer.getvalue()


def drop_file(page: Page, selector: str, name: str, data: bytes, mime: str = "audio/wav") -> None:
    """Drag a file onto an element: dispatch dragenter, dragover and drop with a real DataTransfer."""
    page.evaluate(
        """([selector, name, encoded, mime]) => {
             const bytes = Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0));
             const transfer = new DataTransfer();
             transfer.items.add(new File([bytes], name, { type: mime }));
             const target = document.querySelector(selector);
             for (const type of ["dragenter", "dragover", "drop"]) {
               target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
             }
           }""",
        [selector, name, base64.b64encode(data).decode(), mime],
    )


def choose_file(page: Page, selector: str, name: str, data: bytes, mime: str = "audio/wav") -> None:
    """Pick a file in an `<input type=file>`."""
    page.locator(selector).set_input_files({"name": name, "mimeType": mime, "buffer": data})


def forgive(browser_errors: list[str], text: str) -> None:
    """Remove the console errors a test provoked on purpose (e.g. the 400 of a refused upload); others still fail it."""
    expected = [error for error in browser_errors if text in error]
    assert expected, f"expected a browser error containing {text!r}, got {browser_errors}"
    for error in expected:
        browser_errors.remove(error)


_WATCH_ATTRIBUTE = """([selector, name]) => {
  const seen = [];
  const node = document.querySelector(selector);
  new MutationObserver(() => seen.push(node.getAttribute(name)))
    .observe(node, { attributes: true, attributeFilter: [name] });
  return seen;
}"""


def watch_attribute(page: Page, selector: str, name: str) -> JSHandle:
    """Record every value an attribute takes from now on (states that last less than a poll are kept too)."""
    return page.evaluate_handle(_WATCH_ATTRIBUTE, [selector, name])


def sent_submits(page: Page) -> list[dict]:
    """Collect the payload of every submit_sliders frame the page sends from now on."""
    payloads: list[dict] = []

    def on_frame(frame: object) -> None:
        if isinstance(frame, str) and '"submit_sliders"' in frame:
            payloads.append(json.loads(frame[frame.index("["):])[1])

    page.on("websocket", lambda socket: socket.on("framesent", on_frame))
    return payloads
