"""Light and dark themes: the page follows the system's colour scheme until the toggle is pressed, the choice is
kept; every text on screen meets WCAG AA contrast (4.5:1) in both themes, the greyed Top K / Top P label too."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from .ui import generate, open_app, submit, wait_state

WCAG_AA = 4.5

#: The contrast of every visible text on the page: each element with its own text (or an input's value), its
#: colour composited over the backgrounds behind it (with the opacity of its ancestors), against that background.
#: Disabled controls are left out (WCAG exempts inactive components). Test instrumentation only.
CONTRAST = """() => {
  const rgba = (text) => {
    const parts = text.match(/[\\d.]+/g).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const over = (top, bottom) => {
    const alpha = top[3] + bottom[3] * (1 - top[3]);
    return [0, 1, 2].map((i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / (alpha || 1)).concat(alpha);
  };
  const luminance = ([r, g, b]) => [r, g, b].map((value) => {
    const c = value / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (node) => {
    const layers = [];
    for (let at = node; at; at = at.parentElement) {
      const color = rgba(getComputedStyle(at).backgroundColor);
      if (color[3] > 0) layers.push(color);
      if (color[3] >= 1) break;
    }
    layers.push([255, 255, 255, 1]);
    return layers.reverse().reduce((below, layer) => over(layer, below));
  };
  const opacity = (node) => {
    let value = 1;
    for (let at = node; at; at = at.parentElement) value *= Number(getComputedStyle(at).opacity);
    return value;
  };
  const results = [];
  const seen = new Set();
  const check = (node, text) => {
    if (seen.has(node) || !node.getClientRects().length) return;
    if (node.closest(":disabled, [hidden], .visually-hidden")) return;
    const style = getComputedStyle(node);
    if (style.visibility === "hidden") return;
    seen.add(node);
    const back = background(node);
    const color = rgba(style.color);
    const front = over([color[0], color[1], color[2], color[3] * opacity(node)], back);
    const [light, dark] = [luminance(front), luminance(back)].sort((a, b) => b - a);
    results.push({ ratio: Math.round(((light + 0.05) / (dark + 0.05)) * 100) / 100, text: text.slice(0, 40),
                   where: node.outerHTML.slice(0, 90) });
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const parent = walker.currentNode.parentElement;
    if (text && !parent.closest("script, option")) check(parent, text);
  }
  const fields = "input[type=number], input[type=text], input[type=search], select, textarea";
  for (const input of document.querySelectorAll(fields)) {
    if (input.value) check(input, input.value);
  }
  return results;
}"""


def failures(page: Page) -> tuple[list[dict], list[dict]]:
    """Every text's contrast on the page now, and those under AA."""
    results = page.evaluate(CONTRAST)
    return results, [result for result in results if result["ratio"] < WCAG_AA]


def test_the_theme_follows_the_system_until_chosen(new_page, live_server) -> None:
    page = new_page(color_scheme="light")
    open_app(page, live_server)
    html, toggle = page.locator("html"), page.locator("[data-action=toggle-theme]")
    expect(html).to_have_attribute("data-theme", "light")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 245, 249)"
    page.emulate_media(color_scheme="dark")  # followed while nothing is chosen
    expect(html).to_have_attribute("data-theme", "dark")
    toggle.click()
    expect(html).to_have_attribute("data-theme", "light")
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(html).to_have_attribute("data-theme", "light")  # the choice is kept over the system's
    toggle.focus()
    page.keyboard.press("Enter")
    expect(html).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 15, 20)"


def test_text_contrast_meets_wcag_aa_in_both_themes(page: Page, live_server, screenshot) -> None:
    open_app(page, live_server)
    generate(page, "contrast check: glassy pads")
    page.locator("[data-setting=model]").evaluate(
        "select => { select.append(new Option('gone-model', 'gone-model')); select.value = 'gone-model'; }")
    wait_state(submit(page, "contrast check: a refused request"), "refused")  # the error colours too
    page.locator("[data-setting=model]").select_option("small")
    page.locator("[data-action=toggle-favorite]").click()  # a pressed button
    expect(page.locator("[data-action=toggle-favorite]")).to_have_attribute("aria-pressed", "true")
    page.locator("[data-role=advanced] summary").click()
    top_k = page.locator('[data-role=range][data-name="top_k"]')
    expect(top_k).to_have_attribute("data-inactive", "true")

    for theme in ("dark", "light"):
        if page.locator("html").get_attribute("data-theme") != theme:
            page.locator("[data-action=toggle-theme]").click()
        expect(page.locator("html")).to_have_attribute("data-theme", theme)
        results, bad = failures(page)
        assert len(results) > 60, "the scan saw the page's texts"
        assert not bad, f"{theme}: texts under {WCAG_AA}:1: {bad}"
        greyed = [result for result in results if 'for="top_k"' in result["where"]]
        assert greyed and all(result["ratio"] >= WCAG_AA for result in greyed), greyed
        page.locator("[data-action=toggle-library]").click()
        expect(page.locator("[data-role=library-item]").first).to_be_visible()
        _, bad = failures(page)
        assert not bad, f"{theme}, library: texts under {WCAG_AA}:1: {bad}"
        if theme == "light":
            page.locator("[data-action=toggle-library]").click()
            page.locator("[data-role=settings]").evaluate("panel => { panel.scrollTop = 0; }")
            screenshot("light", page)
        else:
            page.locator("[data-action=toggle-library]").click()
    page.locator("[data-action=toggle-favorite]").click()
    page.locator("[data-action=toggle-theme]").click()
