/**
 * The chat: the message list and the life of each job started from this tab.
 *
 * Messages are kept in localStorage as structured records (never HTML) and rendered by key, so a
 * record updates its own node. Every job has ONE system message, keyed by its job id, showing the
 * queue position, then the phase and percent, and ending with the file link or the error. The
 * double-submit guard lives here too: `composer:busy` is true while one of this tab's jobs is open,
 * and is released on done, refusal, failure (D9), cancel or loss.
 * @module chat
 */
import { emit, on } from "./bus.js";
import { $, delegate, fileName, fileStamp, saveBlob } from "./dom.js";
import { getJson } from "./http.js";
import { t } from "./i18n.js";
import { autoTuneChanges, fillMessage, messageNode } from "./render.js";
import { request } from "./socket.js";
import { load, save, storageKey } from "./store.js";

const STORE_KEY = "chat.v2";
const COMPACT_KEY = "chat.compact";
const MAX_RECORDS = 1000;
const EARLY_LIMIT = 50;
const NEAR_BOTTOM_PX = 80;
const TERMINAL = new Set(["done", "failed", "cancelled", "interrupted", "refused"]);
const TRACK_PATH = /^static\/audio\/[^/\\]+$/;
const FIELDS = {
  text: "string", job: "string", reply: "string", state: "string", phase: "string", track: "string",
  audio: "string", json: "string", rerun: "boolean", at: "number", progress: "number", position: "number",
  seed: "number", continuation: "number",
};

/**
 * @typedef {object} ChatRecord
 * @property {string} id record id
 * @property {"user"|"system"} role user prompt, or the system message of one job
 * @property {number} at creation time (ms)
 * @property {string} [text] the prompt (user)
 * @property {boolean} [rerun] the prompt was a rerun (user)
 * @property {string} [reply] id of the job message answering this prompt (user)
 * @property {string} [job] server job id
 * @property {string} [state] sending | queued | running | done | failed | cancelled | interrupted | refused
 * @property {number} [progress] 0..1
 * @property {string} [phase] server phase name
 * @property {string} [track] track base name, once done (both roles)
 * @property {string} [audio] `static/audio/<file>` (system, done)
 * @property {string} [json] `static/audio/<name>.json` (system, done)
 * @property {{type: string, message?: string}} [error]
 */

/**
 * Restore the chat (or rebuild it from the server's tracks when nothing is stored) and wire the
 * job events, the toolbar (export, compact) and the track links.
 * @param {ParentNode} root the page
 * @returns {Promise<void>}
 */
export async function initChat(root) {
  const chat = {
    log: $("[data-role=chat-log]", root),
    scroller: $("[data-role=chat-scroll]", root),
    empty: $("[data-role=chat-empty]", root),
    records: readRecords(),
    nodes: new Map(),
    pending: new Set(),
    early: new Map(),
    connectSnapshot: false,
  };
  if (!chat.records.length) chat.records = await historyFromServer();
  adoptOpenJobs(chat);
  persist(chat);
  render(chat);
  bindToolbar(chat, root);
  bindJobEvents(chat);
  bindUiEvents(chat);
  updateGuard(chat);
}

// ---- records and storage ------------------------------------------------------------------------

function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

function readRecords() {
  const stored = load(STORE_KEY, []);
  return Array.isArray(stored) ? stored.filter(isRecord).map(cleanRecord) : [];
}

function isRecord(raw) {
  return raw && typeof raw === "object" && typeof raw.id === "string" && (raw.role === "user" || raw.role === "system");
}

/** Keep only known fields of the right type: stored data is never trusted as markup or as a URL. */
function cleanRecord(raw) {
  const record = { id: raw.id, role: raw.role };
  for (const [name, type] of Object.entries(FIELDS)) {
    if (typeof raw[name] === type) record[name] = raw[name];
  }
  for (const name of ["audio", "json"]) {
    if (record[name] && !TRACK_PATH.test(record[name])) delete record[name];
  }
  if (raw.error && typeof raw.error === "object") {
    record.error = { type: String(raw.error.type ?? ""), message: String(raw.error.message ?? "") };
  }
  if (Array.isArray(raw.notes)) {
    record.notes = raw.notes
      .filter((note) => typeof note?.key === "string" && note.key.startsWith("note."))
      .map((note) => ({ key: note.key, vars: Object.fromEntries(Object.entries(note.vars ?? {}).map(([k, v]) => [k, String(v)])) }));
  }
  return record;
}

function persist(chat) {
  if (chat.records.length > MAX_RECORDS) chat.records.splice(0, chat.records.length - MAX_RECORDS);
  save(STORE_KEY, chat.records);
}

async function historyFromServer() {
  try {
    const tracks = await getJson("/api/tracks");
    return tracks.slice().reverse().flatMap(recordsOfTrack);
  } catch {
    return [];
  }
}

function recordsOfTrack(track) {
  const at = Math.round((track.mtime ?? 0) * 1000);
  const answer = {
    id: newId(), role: "system", at, state: "done", progress: 1, track: track.name, audio: track.audio,
    json: track.json, seed: track.meta?.parameters?.seed, job: track.meta?.job_id,
  };
  return [cleanRecord({ id: newId(), role: "user", at, text: String(track.meta?.prompt ?? ""), track: track.name, reply: answer.id }),
    cleanRecord(answer)];
}

/** Jobs still open in storage belong to this browser: keep guarding them until the server says how they ended. */
function adoptOpenJobs(chat) {
  for (const record of chat.records) {
    if (record.role !== "system" || TERMINAL.has(record.state)) continue;
    if (record.job) chat.pending.add(record.id);
    else Object.assign(record, { state: "interrupted", error: { type: "lost" } });
  }
}

// ---- rendering --------------------------------------------------------------------------------

function nodeOf(chat, record) {
  const node = chat.nodes.get(record.id);
  if (node) {
    fillMessage(node, record);
    return node;
  }
  const created = messageNode(record);
  chat.nodes.set(record.id, created);
  return created;
}

function render(chat) {
  const ids = new Set(chat.records.map((record) => record.id));
  for (const [id, node] of chat.nodes) {
    if (!ids.has(id)) {
      node.remove();
      chat.nodes.delete(id);
    }
  }
  chat.log.append(...chat.records.map((record) => nodeOf(chat, record)));
  chat.empty.hidden = chat.records.length > 0;
  scrollToEnd(chat);
}

function nearBottom(chat) {
  const { scrollTop, scrollHeight, clientHeight } = chat.scroller;
  return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
}

function scrollToEnd(chat) {
  chat.scroller.scrollTop = chat.scroller.scrollHeight;
}

function addRecord(chat, fields) {
  const record = { id: newId(), at: Date.now(), ...fields };
  chat.records.push(record);
  chat.log.append(nodeOf(chat, record));
  chat.empty.hidden = true;
  scrollToEnd(chat);
  persist(chat);
  return record;
}

function update(chat, record, changes, keep = false) {
  const stick = nearBottom(chat);
  Object.assign(record, changes);
  nodeOf(chat, record);
  if (stick) scrollToEnd(chat);
  if (keep) persist(chat);
}

function jobRecord(chat, jobId) {
  return chat.records.find((record) => record.role === "system" && record.job === jobId);
}

// ---- the job of a submit or a rerun --------------------------------------------------------------

function updateGuard(chat) {
  emit("composer:busy", { busy: chat.pending.size > 0 });
}

async function startJob(chat, userFields, send) {
  if (chat.pending.size) {
    emit("toast:show", { key: "toast.busy", kind: "error" });
    return;
  }
  const user = addRecord(chat, { role: "user", ...userFields });
  const { id } = addRecord(chat, { role: "system", state: "sending", progress: 0 });
  user.reply = id;
  chat.pending.add(id);
  updateGuard(chat);
  const ack = await send();
  // Look the records up again: another tab's save may have replaced the objects meanwhile.
  const record = chat.records.find((item) => item.id === id);
  if (!record) {
    release(chat, { id });
    return;
  }
  if (!ack.ok) {
    refuse(chat, record, ack.error);
    return;
  }
  emit("job:accepted", { rerun: Boolean(userFields.rerun) });
  const asker = chat.records.find((item) => item.reply === id);
  if (asker) asker.job = ack.job_id;
  update(chat, record, { job: ack.job_id, state: "queued", position: ack.position, seed: ack.seed, notes: ackNotes(ack) }, true);
  const early = chat.early.get(ack.job_id);
  chat.early.delete(ack.job_id);
  if (early?.patch) patchJob(chat, ack.job_id, early.patch);
  if (early?.finish) finish(chat, early.finish);
}

function ackNotes(ack) {
  const notes = Object.entries(ack.clamped ?? {}).map(([field, change]) => ({
    key: "note.clamped", vars: { field, requested: String(change.requested), used: String(change.used) },
  }));
  const tuned = autoTuneChanges(ack.auto_tune);
  if (tuned) notes.push({ key: "note.auto_tune", vars: { changes: tuned } });
  return notes;
}

function refuse(chat, record, error = { type: "unknown" }) {
  update(chat, record, { state: "refused", error }, true);
  release(chat, record);
  if (error.field) emit("settings:field-error", { field: error.field });
}

function release(chat, record) {
  if (chat.pending.delete(record.id)) updateGuard(chat);
}

async function cancelPending(chat) {
  for (const record of chat.records.filter((item) => chat.pending.has(item.id) && item.job)) {
    const ack = await request("cancel_job", { job_id: record.job });
    if (!ack.ok && ack.error?.type === "not_found") finish(chat, { job_id: record.job, state: "cancelled" });
  }
}

// ---- job events -------------------------------------------------------------------------------

function bindJobEvents(chat) {
  on("job_started", ({ job_id: jobId }) => patchJob(chat, jobId, { state: "running", phase: "starting" }));
  on("progress", ({ job_id: jobId, progress, phase }) => patchJob(chat, jobId, { state: "running", progress, phase }));
  on("update_seed", ({ job_id: jobId, seed }) => patchJob(chat, jobId, { seed }));
  on("continuation_applied", ({ job_id: jobId, continuation_original_seconds: seconds }) => {
    if (seconds !== undefined) patchJob(chat, jobId, { continuation: seconds });
  });
  on("on_finish_audio", (payload) => finish(chat, payload));
  on("queue_state", (snapshot) => reconcile(chat, snapshot));
  // The server sends audio_json_pairs only on connect, right before that connection's queue snapshot.
  on("audio_json_pairs", () => { chat.connectSnapshot = true; });
  on("job:submit", ({ text, payload }) => startJob(chat, { text }, () => request("submit_sliders", payload)));
  on("composer:rerun", ({ name, prompt }) => startJob(chat, { text: prompt, rerun: true }, () => request("rerun", { name })));
  on("composer:cancel", () => cancelPending(chat));
}

/** Events can name a job before the submit's ack does: keep them until the ack arrives. */
function remember(chat, jobId, entry) {
  if (!chat.records.some((record) => record.state === "sending")) {
    chat.early.clear();
    return;
  }
  const previous = chat.early.get(jobId) ?? {};
  chat.early.set(jobId, { patch: { ...previous.patch, ...entry.patch }, finish: entry.finish ?? previous.finish });
  if (chat.early.size > EARLY_LIMIT) chat.early.delete(chat.early.keys().next().value);
}

function patchJob(chat, jobId, changes) {
  const record = jobRecord(chat, jobId);
  if (!record) remember(chat, jobId, { patch: changes });
  else if (!TERMINAL.has(record.state)) update(chat, record, changes);
}

function finish(chat, payload) {
  const record = jobRecord(chat, payload.job_id);
  if (!record) {
    remember(chat, payload.job_id, { finish: payload });
    return;
  }
  if (TERMINAL.has(record.state)) return;
  const done = payload.state === "done";
  update(chat, record, done
    ? { state: "done", progress: 1, seed: payload.seed, track: payload.name, audio: payload.filename, json: payload.json_filename, error: undefined }
    : { state: payload.state, error: payload.error ?? undefined });
  const user = chat.records.find((item) => item.reply === record.id);
  if (done && user) user.track = payload.name;
  persist(chat);
  if (!chat.pending.has(record.id)) return;
  release(chat, record);
  if (done) emit("track:show", { name: payload.name, audio: payload.filename, json: payload.json_filename, meta: payload.meta });
}

/**
 * Bring open job messages in line with the server's queue snapshot (after a reload or reconnect).
 * Only the snapshot sent on connect can prove a job lost: a broadcast one may predate a fresh submit.
 */
function reconcile(chat, snapshot) {
  const canLose = chat.connectSnapshot;
  chat.connectSnapshot = false;
  const jobs = new Map();
  for (const job of snapshot.recent ?? []) jobs.set(job.id, job);
  (snapshot.queued ?? []).forEach((job, index) => jobs.set(job.id, { ...job, position: index + 1 }));
  if (snapshot.running) jobs.set(snapshot.running.id, snapshot.running);
  const open = chat.records.filter((record) => record.role === "system" && record.job && !TERMINAL.has(record.state));
  for (const record of open) {
    const job = jobs.get(record.job);
    if (!job) {
      if (canLose) finish(chat, { job_id: record.job, state: "interrupted", error: { type: "lost" } });
    } else if (job.state === "done") finish(chat, { ...job.result, job_id: job.id, state: "done" });
    else if (TERMINAL.has(job.state)) finish(chat, { job_id: job.id, state: job.state, error: job.error });
    else patchJob(chat, job.id, { state: job.state, progress: job.progress, phase: job.phase, position: job.position });
  }
}

// ---- UI events, toolbar -----------------------------------------------------------------------

function bindUiEvents(chat) {
  delegate(chat.log, "click", "[data-action=open-track]", (event, link) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    emit("track:open", { name: link.dataset.track, audio: link.dataset.audio, json: link.dataset.json });
  });
  on("tracks:removed", ({ all, names }) => {
    const gone = new Set(names);
    const keep = (record) => (all
      ? chat.pending.has(record.id) || chat.pending.has(record.reply)
      : !gone.has(record.track));
    chat.records = chat.records.filter(keep);
    persist(chat);
    render(chat);
  });
  window.addEventListener("storage", (event) => {
    if (event.key === storageKey(STORE_KEY)) mergeStored(chat);
  });
  on("i18n:changed", () => render(chat));
}

/** Another tab saved the chat: take its records, but keep this tab's own open jobs as they are here. */
function mergeStored(chat) {
  const mine = new Map(chat.records
    .filter((record) => chat.pending.has(record.id) || chat.pending.has(record.reply))
    .map((record) => [record.id, record]));
  const stored = readRecords().map((record) => {
    const local = mine.get(record.id);
    mine.delete(record.id);
    return local ?? record;
  });
  chat.records = [...stored, ...mine.values()];
  render(chat);
}

function bindToolbar(chat, root) {
  const compact = $("[data-action=toggle-compact]", root);
  const setCompact = (on) => {
    chat.log.dataset.compact = String(on);
    compact.setAttribute("aria-pressed", String(on));
    save(COMPACT_KEY, on);
  };
  setCompact(load(COMPACT_KEY, false) === true);
  compact.addEventListener("click", () => setCompact(chat.log.dataset.compact !== "true"));
  $("[data-action=export-json]", root).addEventListener("click", () => exportJson(chat));
  $("[data-action=export-txt]", root).addEventListener("click", () => exportText(chat));
}

function exportJson(chat) {
  const data = { app: "audiocraft-webui", exported_at: new Date().toISOString(), messages: chat.records };
  saveBlob(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }), `chat_${fileStamp()}.json`);
}

function exportText(chat) {
  const text = chat.records.map(textLine).join("\n\n");
  saveBlob(new Blob([`${text}\n`], { type: "text/plain;charset=utf-8" }), `chat_${fileStamp()}.txt`);
}

function textLine(record) {
  const when = new Date(record.at || 0).toISOString().slice(0, 16).replace("T", " ");
  if (record.role === "user") return `[${when}] ${t("export.user")}: ${record.text ?? ""}`;
  const detail = record.state === "done" && record.audio
    ? `${fileName(record.audio)}${record.seed !== undefined ? ` (seed ${record.seed})` : ""}`
    : record.error?.message ?? "";
  return `[${when}] ${t("export.system")}: ${t(`job.state.${record.state}`)}${detail ? ` — ${detail}` : ""}`;
}
