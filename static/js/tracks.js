/**
 * The one active track card: head, parameters, Favourite and Lock (the server's flags), Copy seed, Rerun and
 * Delete (disabled while locked); plus "Clear all", which keeps locked tracks. After a load the card shows the
 * newest track. While a job's preview plays (`live:show`) the card shows the job's prompt and the live player only.
 * Deletions (here, or in another tab via `tracks_changed`) are announced as
 * `tracks:removed {all, names, clearAll, kept}` so the chat, player and stems can drop what belonged to them.
 * @module tracks
 */
import { emit, on } from "./bus.js";
import { $, delegate, fileName, stemOf } from "./dom.js";
import { confirmAction } from "./dialog.js";
import { getJson, postJson } from "./http.js";
import { errorOf } from "./i18n.js";
import { liveHeadNodes, trackHeadNodes, trackParamNodes } from "./render.js";
import { getSettings } from "./settings.js";
import { initTrackWorkflow } from "./tracks-workflow.js";

const NARROW = "(max-width: 760px)";
const REVEAL_DELAY_MS = 250;

/**
 * Wire the card and the Clear-all button.
 * @param {ParentNode} root the page
 * @returns {void}
 */
export function initTracks(root) {
  const view = {
    card: $("[data-role=track-card]", root),
    head: $("[data-role=card-head]", root),
    params: $("[data-role=card-params]", root),
    actions: $("[data-role=card-actions]", root),
    empty: $("[data-role=track-empty]", root),
    rerun: $("[data-action=rerun]", root),
    remove: $("[data-action=delete-track]", root),
    lockHint: $("[data-role=lock-hint]", root),
    current: null,
    touched: false,
  };
  on("track:open", (ref) => openTrack(view, ref));
  on("track:show", (track) => {
    showTrack(view, track);
    if (track.reveal) reveal(view);
  });
  on("live:show", ({ label }) => showLive(view, label));
  on("audio_json_pairs", (pairs) => showNewest(view, pairs));
  on("tracks_changed", (payload) => {
    if (payload?.updated) updateTrack(view, payload.updated);
    else emit("tracks:removed", removedBy(payload));
  });
  on("tracks:removed", ({ all, names }) => {
    if (view.current && (all || names.includes(view.current.name))) hideTrack(view);
  });
  on("composer:busy", ({ busy }) => { view.rerun.disabled = busy; });
  on("i18n:changed", () => {
    if (view.current) showTrack(view, view.current);
  });
  delegate(view.card, "click", "[data-action]", (event, button) => onAction(view, button));
  initTrackWorkflow(view, getSettings);
  $("[data-action=clear-all]", root).addEventListener("click", clearAll);
}

/** What a `tracks_changed` event removed: every track, or those named (their JSON files are the commit markers). */
function removedBy(payload) {
  const clearAll = payload?.clear_all === true;
  if (payload?.cleared) return { all: true, names: [], clearAll };
  const names = (payload?.deleted ?? [])
    .filter((path) => path.startsWith("static/audio/") && path.endsWith(".json"))
    .map(stemOf);
  return { all: false, names, clearAll };
}

/** Fetch a track's JSON and show it; `ifEmpty` (the newest track after a load) gives way to anything shown meanwhile. */
async function openTrack(view, ref, ifEmpty = false) {
  try {
    const meta = await getJson(`/${ref.json}`);
    if (ifEmpty && view.touched) return;
    emit("track:show", { ...ref, audio: ref.audio ?? `static/audio/${meta.audio_file}`, meta });
  } catch {
    if (!ifEmpty) emit("toast:show", { key: "toast.track_missing", vars: { name: fileName(ref.audio ?? ref.name) }, kind: "error" });
  }
}

/** The server's history on connect (newest first): an empty card shows the newest track, once per page load. */
function showNewest(view, pairs) {
  if (view.touched || !Array.isArray(pairs) || !pairs.length) return;
  const [audio, json] = pairs[0];
  openTrack(view, { name: stemOf(json), audio, json }, true);
}

function showTrack(view, track) {
  view.touched = true;
  view.current = track;
  view.card.dataset.track = track.name;
  view.head.replaceChildren(...trackHeadNodes(track));
  view.params.replaceChildren(...trackParamNodes(track.meta));
  showFlags(view);
  setLive(view, false);
}

/**
 * On a phone the card sits below the chat: bring a new track into view, once the queue, the chat and the prompt
 * box above it have taken their new sizes (the job's end changes all three).
 */
function reveal(view) {
  if (!window.matchMedia(NARROW).matches) return;
  const { name } = view.current;
  setTimeout(() => requestAnimationFrame(() => {
    if (view.current?.name === name) view.card.scrollIntoView({ block: "start" });
  }), REVEAL_DELAY_MS);
}

/** The card of a job still generating: its prompt and the live player, no parameters or actions yet. */
function showLive(view, label) {
  view.touched = true;
  view.current = null;
  delete view.card.dataset.track;
  view.head.replaceChildren(...liveHeadNodes(label));
  view.params.replaceChildren();
  view.lockHint.hidden = true;
  setLive(view, true);
}

function setLive(view, live) {
  view.card.dataset.live = String(live);
  view.params.hidden = live;
  view.actions.hidden = live;
  view.card.hidden = false;
  view.empty.hidden = true;
}

function hideTrack(view) {
  view.current = null;
  delete view.card.dataset.track;
  view.card.hidden = true;
  view.empty.hidden = false;
}

// ---- favourite and lock -------------------------------------------------------------------------

function showFlags(view) {
  const meta = view.current?.meta ?? {};
  for (const button of view.actions.querySelectorAll("[data-flag]")) {
    button.setAttribute("aria-pressed", String(meta[button.dataset.flag] === true));
  }
  view.remove.disabled = meta.locked === true;
  view.lockHint.hidden = meta.locked !== true;
}

/** A track changed its flags (here or in another tab): the card follows when it shows that track. */
function updateTrack(view, track) {
  if (!track?.name || view.current?.name !== track.name) return;
  view.current = { ...view.current, meta: { ...view.current.meta, favorite: track.meta?.favorite, locked: track.meta?.locked } };
  showFlags(view);
}

async function toggleFlag(view, button) {
  const track = view.current;
  const flag = button.dataset.flag;
  button.disabled = true;
  try {
    const answer = await postJson(`/api/tracks/${encodeURIComponent(track.name)}/flags`, { [flag]: track.meta?.[flag] !== true });
    updateTrack(view, answer.track);
  } catch (error) {
    emit("toast:show", { key: "toast.request_failed", vars: { message: errorOf(error) }, kind: "error" });
  } finally {
    button.disabled = false;
  }
}

// ---- actions ------------------------------------------------------------------------------------

function onAction(view, button) {
  const track = view.current;
  const action = button.dataset.action;
  if (!track) return;
  if (action === "copy-seed") copySeed(track.meta?.parameters?.seed);
  else if (action === "rerun") emit("composer:rerun", { name: track.name, prompt: track.meta?.prompt ?? "", preview: getSettings().preview });
  else if (action === "delete-track") deleteTrack(view, track.name);
  else if (button.dataset.flag) toggleFlag(view, button);
}

async function copySeed(seed) {
  if (seed === undefined) return;
  try {
    await navigator.clipboard.writeText(String(seed));
    emit("toast:show", { key: "toast.seed_copied", vars: { seed }, kind: "success" });
  } catch {
    emit("toast:show", { key: "toast.copy_failed", vars: { seed }, kind: "error" });
  }
}

async function deleteTrack(view, name) {
  if (!await confirmAction({ title: "confirm.delete_title", text: "confirm.delete_text", vars: { name } })) return;
  try {
    await postJson("/delete_audio", { name });
    emit("tracks:removed", { all: false, names: [name] });
    emit("toast:show", { key: "toast.deleted", vars: { name }, kind: "success" });
  } catch (error) {
    emit("toast:show", { key: "toast.delete_refused", vars: { name, message: errorOf(error) }, kind: "error" });
    if (error.type === "locked") updateTrack(view, { name, meta: { ...view.current?.meta, locked: true } });
  }
}

async function clearAll() {
  if (!await confirmAction({ title: "confirm.clear_title", text: "confirm.clear_text", confirm: "action.clear_all" })) return;
  try {
    const answer = await postJson("/delete_all_audio");
    const count = answer.deleted?.length ?? 0;
    const kept = answer.kept_names ?? [];
    if (kept.length) {
      const names = (answer.deleted ?? []).filter((path) => path.startsWith("static/audio/") && path.endsWith(".json")).map(stemOf);
      emit("tracks:removed", { all: false, names, clearAll: true, kept });
      emit("toast:show", { key: "toast.cleared_kept", vars: { count, kept: kept.length }, kind: "success" });
    } else {
      emit("tracks:removed", { all: true, names: [], clearAll: true, kept: [] });
      emit("toast:show", { key: "toast.cleared", vars: { count }, kind: "success" });
    }
  } catch (error) {
    emit("toast:show", { key: "toast.request_failed", vars: { message: errorOf(error) }, kind: "error" });
  }
}
