/**
 * The one active track card: head, parameters, Copy seed, Rerun and Delete; plus "Clear all".
 * While a job's preview plays (`live:show`) the card shows the job's prompt and the live player only.
 * Deletions (here, or in another tab via `tracks_changed`) are announced as
 * `tracks:removed {all, names}` so the chat, player and stems can drop what belonged to them.
 * @module tracks
 */
import { emit, on } from "./bus.js";
import { $, delegate, fileName, stemOf } from "./dom.js";
import { confirmAction } from "./dialog.js";
import { getJson, postJson } from "./http.js";
import { errorOf } from "./i18n.js";
import { liveHeadNodes, trackHeadNodes, trackParamNodes } from "./render.js";
import { getSettings } from "./settings.js";

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
    current: null,
  };
  on("track:open", (ref) => openTrack(ref));
  on("track:show", (track) => showTrack(view, track));
  on("live:show", ({ label }) => showLive(view, label));
  on("tracks_changed", (payload) => emit("tracks:removed", removedBy(payload)));
  on("tracks:removed", ({ all, names }) => {
    if (view.current && (all || names.includes(view.current.name))) hideTrack(view);
  });
  on("composer:busy", ({ busy }) => { view.rerun.disabled = busy; });
  on("i18n:changed", () => {
    if (view.current) showTrack(view, view.current);
  });
  delegate(view.card, "click", "[data-action]", (event, button) => onAction(view, button.dataset.action));
  $("[data-action=clear-all]", root).addEventListener("click", clearAll);
}

/** Names of the tracks a `tracks_changed` event removed (their JSON files are the commit markers). */
function removedBy(payload) {
  if (payload?.cleared) return { all: true, names: [] };
  const names = (payload?.deleted ?? [])
    .filter((path) => path.startsWith("static/audio/") && path.endsWith(".json"))
    .map(stemOf);
  return { all: false, names };
}

async function openTrack(ref) {
  try {
    const meta = await getJson(`/${ref.json}`);
    emit("track:show", { ...ref, meta });
  } catch {
    emit("toast:show", { key: "toast.track_missing", vars: { name: fileName(ref.audio ?? ref.name) }, kind: "error" });
  }
}

function showTrack(view, track) {
  view.current = track;
  view.card.dataset.track = track.name;
  view.head.replaceChildren(...trackHeadNodes(track));
  view.params.replaceChildren(...trackParamNodes(track.meta));
  setLive(view, false);
}

/** The card of a job still generating: its prompt and the live player, no parameters or actions yet. */
function showLive(view, label) {
  view.current = null;
  delete view.card.dataset.track;
  view.head.replaceChildren(...liveHeadNodes(label));
  view.params.replaceChildren();
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

function onAction(view, action) {
  const track = view.current;
  if (!track) return;
  if (action === "copy-seed") copySeed(track.meta?.parameters?.seed);
  else if (action === "rerun") emit("composer:rerun", { name: track.name, prompt: track.meta?.prompt ?? "", preview: getSettings().preview });
  else if (action === "delete-track") deleteTrack(track.name);
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

async function deleteTrack(name) {
  if (!await confirmAction({ title: "confirm.delete_title", text: "confirm.delete_text", vars: { name } })) return;
  try {
    await postJson("/delete_audio", { name });
    emit("tracks:removed", { all: false, names: [name] });
    emit("toast:show", { key: "toast.deleted", vars: { name }, kind: "success" });
  } catch (error) {
    emit("toast:show", { key: "toast.request_failed", vars: { message: errorOf(error) }, kind: "error" });
  }
}

async function clearAll() {
  if (!await confirmAction({ title: "confirm.clear_title", text: "confirm.clear_text", confirm: "action.clear_all" })) return;
  try {
    const answer = await postJson("/delete_all_audio");
    emit("tracks:removed", { all: true, names: [] });
    emit("toast:show", { key: "toast.cleared", vars: { count: answer.deleted?.length ?? 0 }, kind: "success" });
  } catch (error) {
    emit("toast:show", { key: "toast.request_failed", vars: { message: errorOf(error) }, kind: "error" });
  }
}
