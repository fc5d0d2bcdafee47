/**
 * The library: find a take among every track on the server. A panel over the chat (the toolbar's Library
 * button) with text search in the prompts, filters by model, format, favourite, locked, artist, seed and
 * days, and sort by date or name. The track list is fetched once (`GET /api/tracks`) and kept up to date
 * from the server's events; filtering runs in the page (library-filter), synchronously on every keystroke,
 * and the panel notes how long the last filter and render took (`data-filter-ms`). A result opens its card.
 * @module library
 */
import { emit, on } from "./bus.js";
import { $, $$, delegate, el, stemOf } from "./dom.js";
import { getJson } from "./http.js";
import { errorOf, language, t, translate } from "./i18n.js";
import { indexTrack, parseFilters, selectTracks } from "./library-filter.js";

/** Results shown at first, and added by "Show more". */
const PAGE = 100;

/**
 * Wire the library panel and its toolbar button.
 * @param {ParentNode} root the page
 * @param {{models: {key: string}[], formats: string[]}} boot
 * @returns {void}
 */
export function initLibrary(root, boot) {
  const panel = $("[data-role=library]", root);
  const lib = {
    panel,
    toggle: $("[data-action=toggle-library]", root),
    chat: $("[data-role=chat-scroll]", root),
    list: $("[data-role=library-list]", panel),
    count: $("[data-role=library-count]", panel),
    more: $("[data-action=library-more]", panel),
    models: boot.models.map((model) => model.key),
    entries: null,
    loading: null,
    shown: PAGE,
  };
  fillChoices(lib, boot);
  lib.toggle.addEventListener("click", () => setOpen(lib, panel.hidden));
  delegate(panel, "input", "[data-filter]", () => refresh(lib, true));
  delegate(panel, "change", "[data-filter]", () => refresh(lib, true));
  delegate(panel, "click", "[data-action=library-open]", (event, button) => {
    const entry = lib.entries?.find((item) => item.track.name === button.dataset.name);
    if (entry) emit("track:open", { name: entry.track.name, audio: entry.track.audio, json: entry.track.json, reveal: true });
  });
  $("[data-action=library-reset]", panel).addEventListener("click", () => reset(lib));
  lib.more.addEventListener("click", () => {
    lib.shown += PAGE;
    refresh(lib, false);
  });
  bindUpdates(lib);
  on("i18n:changed", () => {
    if (!panel.hidden) refresh(lib, false);
  });
}

function fillChoices(lib, boot) {
  const option = (value, key, text) => (key ? translate(el("option", { attrs: { value } }), key) : el("option", { attrs: { value }, text }));
  $("[data-filter=model]", lib.panel).replaceChildren(option("", "library.any_model"), ...lib.models.map((key) => option(key, null, key)));
  $("[data-filter=format]", lib.panel).replaceChildren(option("", "library.any_format"),
    ...boot.formats.map((format) => option(format, null, format.toUpperCase())));
}

async function setOpen(lib, open) {
  lib.panel.hidden = !open;
  lib.chat.hidden = open;
  lib.toggle.setAttribute("aria-expanded", String(open));
  if (!open) return;
  $("[data-filter=q]", lib.panel).focus();
  if (!lib.entries) await load(lib);
  refresh(lib, true);
}

/** Fetch every track once; later changes come from the server's events. */
function load(lib) {
  lib.loading ??= getJson("/api/tracks").then((tracks) => {
    lib.entries = tracks.map(indexTrack);
    addModels(lib);
  }).catch((error) => {
    lib.entries = null;
    translate(lib.count, "library.failed", { message: errorOf(error) });
  }).finally(() => { lib.loading = null; });
  return lib.loading;
}

/** Custom or older models found in the tracks join the model filter. */
function addModels(lib) {
  const select = $("[data-filter=model]", lib.panel);
  const known = new Set($$("option", select).map((node) => node.value));
  for (const model of new Set((lib.entries ?? []).map((entry) => entry.model))) {
    if (model && !known.has(model)) select.append(el("option", { attrs: { value: model }, text: model }));
  }
}

function values(lib) {
  return Object.fromEntries($$("[data-filter]", lib.panel).map((input) => [
    input.dataset.filter, input.type === "checkbox" ? input.checked : input.value,
  ]));
}

function reset(lib) {
  for (const input of $$("[data-filter]", lib.panel)) {
    if (input.type === "checkbox") input.checked = false;
    else input.value = input.tagName === "SELECT" ? input.options[0].value : "";
  }
  refresh(lib, true);
}

/** Filter, sort and show the first results; `fresh` starts again from the first page. */
function refresh(lib, fresh) {
  if (lib.panel.hidden || !lib.entries) return;
  const started = performance.now();
  if (fresh) lib.shown = PAGE;
  const found = selectTracks(lib.entries, parseFilters(values(lib)));
  const dates = dateFormat();
  lib.list.replaceChildren(...found.slice(0, lib.shown).map((entry) => resultNode(entry, dates)));
  lib.more.hidden = found.length <= lib.shown;
  translate(lib.count, "library.count", { count: found.length, total: lib.entries.length });
  lib.panel.dataset.matched = String(found.length);
  lib.panel.dataset.filterMs = (performance.now() - started).toFixed(2);
}

/** One date formatter per language (a toLocaleString per row would be most of a filter's time). */
const formatters = new Map();
function dateFormat() {
  const lang = language();
  if (!formatters.has(lang)) formatters.set(lang, new Intl.DateTimeFormat(lang, { dateStyle: "short", timeStyle: "short" }));
  return formatters.get(lang);
}

function resultNode(entry, dates) {
  const { track } = entry;
  const meta = track.meta ?? {};
  const when = new Date(entry.created);
  const marks = [
    entry.favorite ? translate(el("span", { className: "badge mark-favorite", data: { role: "mark-favorite" } }), "library.mark_favorite") : null,
    entry.locked ? translate(el("span", { className: "badge mark-locked", data: { role: "mark-locked" } }), "library.mark_locked") : null,
  ];
  const details = [track.name, Number.isNaN(when.getTime()) ? "" : dates.format(when), entry.model, entry.format.toUpperCase(),
    entry.seed === null ? "" : t("job.seed", { seed: entry.seed })].filter(Boolean).join(" · ");
  return el("li", { className: "library-item", data: { role: "library-item", track: track.name } }, [
    el("button", { className: "library-open", attrs: { type: "button" }, data: { action: "library-open", name: track.name } }, [
      el("span", { className: "library-prompt", text: meta.prompt ?? "" }),
      el("span", { className: "library-meta" }, [...marks, el("span", { text: details })]),
    ]),
  ]);
}

// ---- keeping the list up to date ------------------------------------------------------------------

function bindUpdates(lib) {
  const changed = (change) => {
    if (!lib.entries) return;
    change();
    refresh(lib, false);
  };
  on("on_finish_audio", (payload) => {
    if (payload.state !== "done" || !payload.name) return;
    changed(() => {
      const track = { name: payload.name, audio: payload.filename, json: payload.json_filename, meta: payload.meta ?? {}, mtime: Date.now() / 1000 };
      lib.entries = [indexTrack(track), ...lib.entries.filter((entry) => entry.track.name !== track.name)];
      addModels(lib);
    });
  });
  on("tracks_changed", (payload) => {
    const updated = payload?.updated;
    if (updated?.name) {
      changed(() => { lib.entries = lib.entries.map((entry) => (entry.track.name === updated.name ? indexTrack(updated) : entry)); });
    } else if (payload?.clear_all) {
      lib.entries = null; // what was kept is read again when the panel shows next
      if (!lib.panel.hidden) load(lib).then(() => refresh(lib, true));
    } else {
      const gone = new Set((payload?.deleted ?? []).filter((path) => path.endsWith(".json")).map(stemOf));
      changed(() => { lib.entries = lib.entries.filter((entry) => !gone.has(entry.track.name)); });
    }
  });
  on("tracks:removed", ({ all, names, kept }) => {
    const stay = new Set(kept ?? []);
    const gone = new Set(names);
    changed(() => {
      lib.entries = lib.entries.filter((entry) => (all ? false : stay.size ? stay.has(entry.track.name) : !gone.has(entry.track.name)));
    });
  });
}
