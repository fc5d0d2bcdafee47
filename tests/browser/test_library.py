"""The library (issue 16): favourite and lock on the card (Delete refused, Clear all keeps locked tracks), the
library panel's search, filters and sort over 1,000 tracks with the page's filter time measured, and restoring a
request from one of our files dropped on the page."""
from __future__ import annotations

import json
import statistics
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect

from benchmarks.library import TRACKS, write_library

from .ui import drop_file, forgive, generate, open_app, set_number, setting, wav_bytes

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CARD = "[data-role=track-card]"
LIBRARY = "[data-role=library]"
#: The median time of one filter and its list, with the layout, must stay under this (issue 16: fast with 1,000 tracks).
FILTER_BUDGET_MS = 50.0


def api_tracks(server, query: str = "") -> list[dict]:
    """What GET /api/tracks answers (optionally filtered)."""
    with _direct.open(f"{server.url}/api/tracks{'?' + query if query else ''}") as answer:
        return json.load(answer)


def test_favourite_and_lock_on_the_card(new_page, start_server, browser_errors) -> None:
    server = start_server()
    page, other = new_page(), new_page()
    open_app(page, server)
    keep = generate(page, "flags check: keep me").get_attribute("data-track")
    favourite = page.locator(f"{CARD} [data-action=toggle-favorite]")
    lock = page.locator(f"{CARD} [data-action=toggle-lock]")
    delete = page.locator(f"{CARD} [data-action=delete-track]")
    expect(favourite).to_have_attribute("aria-pressed", "false")

    favourite.focus()
    page.keyboard.press("Enter")
    expect(favourite).to_have_attribute("aria-pressed", "true")
    assert [track["name"] for track in api_tracks(server, "favorite=true")] == [keep]
    lock.focus()
    page.keyboard.press("Space")
    expect(lock).to_have_attribute("aria-pressed", "true")
    expect(delete).to_be_disabled()
    expect(page.locator("[data-role=lock-hint]")).to_be_visible()
    assert api_tracks(server, "locked=true")[0]["name"] == keep

    open_app(other, server)  # another tab follows tracks_changed {updated}
    other.locator("[data-action=open-track]").last.click()
    expect(other.locator(f"{CARD} [data-action=toggle-lock]")).to_have_attribute("aria-pressed", "true")
    other.locator(f"{CARD} [data-action=toggle-favorite]").click()
    expect(favourite).to_have_attribute("aria-pressed", "false")

    # A page that did not hear of the lock yet: the server refuses, and the page says why.
    delete.evaluate("button => { button.disabled = false; }")
    delete.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("[data-role=toast]").last).to_contain_text("was not deleted: This track is locked")
    forgive(browser_errors, "status of 409")
    expect(delete).to_be_disabled()
    assert keep in {track["name"] for track in api_tracks(server)}

    gone = generate(page, "flags check: clear me").get_attribute("data-track")
    page.locator("[data-action=clear-all]").click()
    page.get_by_role("dialog").get_by_role("button", name="Clear all").click()
    expect(page.locator("[data-role=toast]").last).to_contain_text("1 locked track(s) kept")
    assert [track["name"] for track in api_tracks(server)] == [keep]
    expect(page.locator(f'[data-role=message][data-track="{gone}"]')).to_have_count(0)
    expect(page.locator(f'[data-role=message][data-track="{keep}"]')).to_have_count(2)

    page.locator(f'[data-action=open-track][data-track="{keep}"]').click()
    lock.click()
    expect(delete).to_be_enabled()
    delete.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(CARD)).to_be_hidden()
    assert api_tracks(server) == []


#: Types a query letter by letter, then sets filters, each a synchronous input event; returns the page's own
#: figure (filter, sort and the result list built) and the wall time including the layout of the results.
MEASURE = """([queries]) => {
  const panel = document.querySelector("[data-role=library]");
  const list = panel.querySelector("[data-role=library-list]");
  const runs = [];
  const fire = (selector, change) => {
    const input = panel.querySelector(selector);
    const started = performance.now();
    change(input);
    input.dispatchEvent(new Event(input.type === "checkbox" ? "change" : "input", { bubbles: true }));
    list.getBoundingClientRect();
    runs.push({ wall: performance.now() - started, own: Number(panel.dataset.filterMs),
                matched: Number(panel.dataset.matched) });
  };
  for (const query of queries) {
    for (let end = 1; end <= query.length; end += 1) {
      fire("[data-filter=q]", (input) => { input.value = query.slice(0, end); });
    }
    fire("[data-filter=q]", (input) => { input.value = ""; });
  }
  fire("[data-filter=favorite]", (input) => { input.checked = true; });
  fire("[data-filter=favorite]", (input) => { input.checked = false; });
  fire("[data-filter=artist]", (input) => { input.value = "nobody"; });
  fire("[data-filter=artist]", (input) => { input.value = ""; });
  return runs;
}"""


def test_the_library_finds_takes_among_1000_tracks_fast(page: Page, start_server, screenshot) -> None:
    server = start_server(prepare=write_library)
    open_app(page, server)
    page.locator("[data-action=toggle-library]").click()
    library = page.locator(LIBRARY)
    expect(library).to_be_visible()
    expect(page.locator("[data-action=toggle-library]")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("[data-role=chat-scroll]")).to_be_hidden()
    expect(library.locator("[data-role=library-count]")).to_have_text(f"{TRACKS} of {TRACKS} tracks")
    expect(library.locator("[data-role=library-item]")).to_have_count(100)
    expect(library.locator("[data-filter=q]")).to_be_focused()

    def count(expected: int) -> None:
        expect(library).to_have_attribute("data-matched", str(expected))

    page.keyboard.type("PIANO vinyl")
    count(200)  # every fifth prompt, any case, every word
    assert all("piano" in text.lower() for text in library.locator(".library-prompt").all_text_contents())
    assert len(api_tracks(server, "q=PIANO%20vinyl")) == 200, "the server's filter agrees"
    library.locator("[data-filter=favorite]").check()
    count(100)  # every tenth track is a favourite, and all of them are piano prompts
    expect(library.locator("[data-role=mark-favorite]")).to_have_count(100)
    library.locator("[data-action=library-reset]").click()
    count(TRACKS)
    library.locator("[data-filter=seed]").fill("42")
    count(1)
    library.locator("[data-filter=seed]").fill("")
    library.locator("[data-filter=since]").fill("2026-01-03")
    library.locator("[data-filter=until]").fill("2026-01-04")
    count(len(api_tracks(server, "since=2026-01-03&until=2026-01-04")))
    library.locator("[data-action=library-reset]").click()
    library.locator("[data-filter=format]").select_option("mp3")
    count(0)
    library.locator("[data-filter=format]").select_option("wav")
    library.locator("[data-filter=model]").select_option("small")
    count(TRACKS)
    library.locator("[data-filter=sort]").select_option("name-asc")
    first = library.locator("[data-role=library-item]").first
    expect(first).to_have_attribute("data-track", "small_0000_01012026_10_00")
    library.locator("[data-filter=sort]").select_option("date-desc")
    newest = api_tracks(server, "limit=1")[0]["name"]
    expect(library.locator("[data-role=library-item]").first).to_have_attribute("data-track", newest)
    library.locator("[data-action=library-more]").click()
    expect(library.locator("[data-role=library-item]")).to_have_count(200)

    library.locator("[data-filter=q]").fill("cinematic #999")
    count(1)
    screenshot("library", page)
    library.locator("[data-action=library-open]").click()
    expect(page.locator(CARD)).to_have_attribute("data-track", "small_0999_01012026_10_00")
    expect(page.locator("[data-role=track-prompt]")).to_have_text("cinematic orchestral build #999")

    runs = page.evaluate(MEASURE, [["warm lofi piano", "drum and bass #12", "xyz"]])
    own = [run["own"] for run in runs]
    wall = [run["wall"] for run in runs]
    figure = {"tracks": TRACKS, "filters": len(runs), "own_ms": {"median": round(statistics.median(own), 2),
              "max": round(max(own), 2)}, "with_layout_ms": {"median": round(statistics.median(wall), 2),
              "max": round(max(wall), 2)}}
    print(f"\nlibrary filter time in Chromium: {json.dumps(figure)}")
    Path(server.data_dir.parent / "library-filter.json").write_text(json.dumps({**figure, "runs": runs}))
    # Medians: a single keystroke can meet a garbage collection or, on a shared CI machine, another process.
    assert statistics.median(wall) <= FILTER_BUDGET_MS and statistics.median(own) <= FILTER_BUDGET_MS, figure
    page.locator("[data-action=toggle-library]").click()
    expect(page.locator("[data-role=chat-scroll]")).to_be_visible()


def test_a_dropped_file_of_ours_offers_to_restore_its_parameters(page: Page, live_server) -> None:
    open_app(page, live_server)
    setting(page, "format").select_option("flac")
    set_number(page, "cfg_coef", 5.5)
    setting(page, "seed_auto").uncheck()
    setting(page, "seed").fill("777")
    setting(page, "loudness").select_option("-23")
    name = generate(page, "restore check: tagged marimba").get_attribute("data-track")
    with _direct.open(f"{live_server.url}/static/audio/{name}.flac") as answer:
        tagged = answer.read()

    setting(page, "format").select_option("wav")
    set_number(page, "cfg_coef", 3)
    setting(page, "seed_auto").check()
    setting(page, "loudness").select_option("-14")
    page.locator("[data-role=prompt]").fill("something else")
    drop_file(page, "[data-role=composer]", "copied.flac", tagged, "audio/flac")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("copied.flac")
    expect(dialog).to_contain_text("restore check: tagged marimba")
    dialog.get_by_role("button", name="Cancel").click()
    expect(setting(page, "format")).to_have_value("wav")  # declined: the file is an upload as before
    expect(page.locator("[data-purpose=continuation]")).to_have_attribute("data-state", "ready")
    page.locator("[data-purpose=continuation] [data-action=clear-upload]").click()

    drop_file(page, "[data-role=composer]", "copied.flac", tagged, "audio/flac")
    dialog.get_by_role("button", name="Restore").click()
    expect(setting(page, "format")).to_have_value("flac")
    expect(page.locator('[data-role=number][data-name="cfg_coef"]')).to_have_value("5.5")
    expect(setting(page, "seed_auto")).not_to_be_checked()
    expect(setting(page, "seed")).to_have_value("777")
    expect(setting(page, "loudness")).to_have_value("-23")
    expect(page.locator("[data-role=prompt]")).to_have_value("restore check: tagged marimba")
    expect(page.locator("[data-role=toast]").last).to_contain_text("copied.flac")
    expect(page.locator("[data-purpose=continuation]")).not_to_have_attribute("data-state", "ready")

    drop_file(page, "[data-role=composer]", "plain.wav", wav_bytes(0.5))  # no tags of ours: straight to the upload
    expect(page.locator("[data-purpose=continuation]")).to_have_attribute("data-state", "ready")
    expect(dialog).to_be_hidden()
