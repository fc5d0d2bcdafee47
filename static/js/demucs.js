/**
 * "Demucs: split any file" (Advanced): uploads a file, starts `demucs_any`, shows its progress and
 * hands the stems to the mixer (`stems:show`) without creating a track. The stem sets this browser made are
 * remembered (their ids, in localStorage) and listed under the panel, so they can be reopened after a reload
 * (`GET /api/stems_any/<id>`; a set gone from the server leaves the list); the chat's "Show the stems" opens one
 * too (`stems:open`).
 * @module demucs
 */
import { emit, on } from "./bus.js";
import { $, delegate, el } from "./dom.js";
import { getJson, uploadFile } from "./http.js";
import { errorOf, language, translate } from "./i18n.js";
import { setProgress } from "./render.js";
import { request } from "./socket.js";
import { load, save } from "./store.js";

const SETS_KEY = "stems_any.sets";
const MAX_SETS = 30;

/**
 * Wire the panel.
 * @param {ParentNode} root the page
 * @returns {void}
 */
export function initDemucs(root) {
  const panel = $("[data-role=demucs-any]", root);
  const view = {
    file: $("[data-role=demucs-file]", panel),
    run: $("[data-action=demucs-run]", panel),
    bar: $("[data-role=demucs-bar]", panel),
    status: $("[data-role=demucs-status]", panel),
    sets: $("[data-role=demucs-sets]", panel),
    upload: null,
    name: "",
  };
  const mine = (payload) => Boolean(view.upload) && payload.upload === view.upload;
  view.run.addEventListener("click", () => start(view));
  on("demucs_any_progress", (payload) => {
    if (!mine(payload)) return;
    const { progress } = payload;
    view.bar.hidden = false;
    setProgress(view.bar, progress);
    translate(view.status, "demucs.separating", { percent: Math.round(progress * 100) });
  });
  on("demucs_any_done", (payload) => {
    if (!mine(payload)) return;
    const { id, display_name: displayName, stems, error } = payload;
    finish(view);
    if (error || !stems?.length) {
      translate(view.status, "demucs.failed", { message: errorOf(error ?? "") });
      return;
    }
    translate(view.status, "demucs.done", { count: stems.length });
    remember(view, { id, name: displayName || view.name });
    emit("stems:show", { id, name: displayName || view.name, stems });
  });
  delegate(view.sets, "click", "[data-action=demucs-open]", (event, button) => reopen(view, button.dataset.id, button.dataset.name));
  on("stems:open", ({ id, name }) => reopen(view, id, name));
  on("tracks:removed", ({ all, clearAll }) => {
    if (all || clearAll) {
      save(SETS_KEY, []);
      showSets(view);
    }
  });
  on("i18n:changed", () => showSets(view));
  showSets(view);
}

async function start(view) {
  const file = view.file.files?.[0];
  if (!file) {
    translate(view.status, "demucs.pick_file");
    return;
  }
  view.run.disabled = true;
  view.name = file.name;
  translate(view.status, "upload.uploading", { name: file.name });
  try {
    const info = await uploadFile("/upload_demucs_any", "file", file);
    view.upload = info.id;
    const ack = await request("demucs_any", { id: info.id });
    if (!ack.ok) throw errorOf(ack.error);
    emit("stems:requested", { jobId: ack.job_id, kind: "demucs_any", label: ack.display_name || file.name, set: ack.id, position: ack.position });
    view.bar.hidden = false;
    setProgress(view.bar, 0);
    translate(view.status, "stems.queued");
  } catch (error) {
    finish(view);
    translate(view.status, "demucs.failed", { message: errorOf(error) });
  }
}

function finish(view) {
  view.run.disabled = false;
  view.bar.hidden = true;
}

// ---- the stem sets of uploads this browser made -------------------------------------------------

function storedSets() {
  const sets = load(SETS_KEY, []);
  return Array.isArray(sets) ? sets.filter((set) => typeof set?.id === "string" && /^[a-f0-9]{32}$/.test(set.id)) : [];
}

function remember(view, { id, name }) {
  const sets = [{ id, name: String(name ?? ""), at: Date.now() }, ...storedSets().filter((set) => set.id !== id)];
  save(SETS_KEY, sets.slice(0, MAX_SETS));
  showSets(view);
}

function forget(view, id) {
  save(SETS_KEY, storedSets().filter((set) => set.id !== id));
  showSets(view);
}

function showSets(view) {
  const sets = storedSets();
  view.sets.hidden = sets.length === 0;
  view.sets.replaceChildren(...sets.map((set) => el("li", { className: "demucs-set", data: { role: "demucs-set", id: set.id } }, [
    el("span", { className: "demucs-set-name", text: set.name || set.id }),
    el("time", { className: "hint", text: new Date(Number(set.at) || 0).toLocaleString(language(), { dateStyle: "short", timeStyle: "short" }) }),
    translate(el("button", { className: "small", attrs: { type: "button" }, data: { action: "demucs-open", id: set.id, name: set.name } }), "demucs.open"),
  ])));
}

/** Show a stem set of an upload again (it is on the server until Clear all); one that is gone leaves the list. */
async function reopen(view, id, name) {
  if (!id) return;
  try {
    const answer = await getJson(`/api/stems_any/${encodeURIComponent(id)}`);
    emit("stems:show", { id, name: name || id, stems: answer.stems ?? [] });
  } catch (error) {
    translate(view.status, "demucs.gone", { name: name || id, message: errorOf(error) });
    if (error.status === 404) forget(view, id);
  }
}
