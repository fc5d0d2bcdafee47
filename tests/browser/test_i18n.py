"""RU / EN: every label, hint, button, dialog and message switches language; nothing shows a raw key or stays
in the other language; the choice persists."""
from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from .ui import choose_file, forgive, generate, open_app

LOCALES = Path(__file__).resolve().parents[2] / "static" / "locales"

#: Every piece of text a user can see or hear: text nodes (trimmed) and labelling attributes.
VISIBLE_TEXT = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    if (text && walker.currentNode.parentElement.closest("script") === null) texts.push(text);
  }
  for (const node of document.querySelectorAll("[placeholder], [aria-label], [title]")) {
    for (const attr of ["placeholder", "aria-label", "title"]) {
      if (node.getAttribute(attr)) texts.push(node.getAttribute(attr));
    }
  }
  texts.push(document.title);
  return texts;
}"""


def load(lang: str) -> dict[str, str]:
    """One dictionary."""
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def test_switching_language_leaves_no_key_and_no_other_language(page: Page, live_server, screenshot) -> None:
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
    open_app(page, live_server)
    message = generate(page, "i18n check: choir pad")
    english, russian = load("en"), load("ru")
    only_english = {text for key, text in english.items() if text != russian[key] and "{" not in text}

    page.locator("[data-role=language]").select_option("ru")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("[data-role=submit]")).to_have_text(russian["action.submit"])
    expect(message.locator("[data-role=job-status]")).to_have_text(russian["job.state.done"])
    expect(page.locator("[data-param=mbd]")).to_have_text(russian["mbd.not_requested"])
    expect(page.locator("[data-param=length]")).to_have_text(russian["unit.seconds"].format(value=1))
    texts = page.evaluate(VISIBLE_TEXT)
    assert not set(texts) & set(english), f"raw keys on screen: {set(texts) & set(english)}"
    assert not set(texts) & only_english, f"English left on the Russian page: {set(texts) & only_english}"
    screenshot("russian", page)

    page.locator("[data-action=delete-track]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("[data-role=confirm-title]")).to_have_text(russian["confirm.delete_title"])
    dialog.get_by_role("button", name=russian["action.cancel"]).click()

    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("[data-role=language]")).to_have_value("ru")
    expect(page.get_by_role("heading", name=russian["chat.heading"])).to_be_visible()
    texts = page.evaluate(VISIBLE_TEXT)
    assert not set(texts) & (set(english) | only_english)

    page.locator("[data-role=language]").select_option("en")
    expect(page.locator("[data-role=submit]")).to_have_text(english["action.submit"])
    only_russian = {text for key, text in russian.items() if text != english[key] and "{" not in text}
    assert not set(page.evaluate(VISIBLE_TEXT)) & only_russian
    assert not [warning for warning in warnings if "i18n" in warning], warnings


def test_russian_says_seed_and_the_servers_errors_in_russian(page: Page, live_server, browser_errors) -> None:
    open_app(page, live_server)
    message = generate(page, "i18n check: bells and words")
    page.locator("[data-role=language]").select_option("ru")
    russian = load("ru")
    prompts = set(page.locator("[data-role=message-text], [data-role=track-prompt], [data-role=queue-label]")
                  .all_text_contents())  # the users' own words, from other tests too
    texts = [text for text in page.evaluate(VISIBLE_TEXT) if text not in prompts]
    assert not [text for text in texts if re.search(r"\bseed\b", text, re.I)], "“seed” left in English"
    expect(message.locator(".job-seed")).to_have_text(re.compile(r"^зерно \d+$"))
    expect(page.locator("[data-action=copy-seed]")).to_have_text(russian["track.copy_seed"])
    expect(page.locator("[data-role=settings] .seed legend")).to_have_text(russian["field.seed"])

    choose_file(page, "[data-purpose=continuation] [data-role=upload-input]", "broken.wav", b"RIFF....WAVEjunk")
    status = page.locator("[data-purpose=continuation] [data-role=upload-status]")
    expect(status).to_have_text(f"broken.wav не принят: {russian['error.invalid_audio']}")
    page.locator("[data-role=language]").select_option("en")
    expect(status).to_have_text(f"broken.wav was refused: {load('en')['error.invalid_audio']}")  # said again
    forgive(browser_errors, "status of 400")
