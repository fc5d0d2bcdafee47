/**
 * The chat's records: their shape, the cleaning of whatever storage holds (never trusted as markup or
 * as a URL), saving, and the history rebuilt from the server's tracks when nothing is stored.
 * @module chat-records
 */
import { getJson } from "./http.js";
import { load, save, storageKey } from "./store.js";

const STORE_KEY = "chat.v2";
const MAX_RECORDS = 1000;
const TRACK_PATH = /^static\/audio\/[^/\\]+$/;
/** Job states after which a job message never changes again. */
export const TERMINAL = new Set(["done", "failed", "cancelled", "interrupted", "refused"]);
const FIELDS = {
  text: "string", job: "string", reply: "string", state: "string", phase: "string", track: "string",
  audio: "string", json: "string", rerun: "boolean", at: "number", progress: "number", position: "number",
  seed: "number", continuation: "number", took: "number", rtf: "number", device: "string",
  downloaded: "number", total: "number", kind: "string", label: "string", source: "string", set: "string",
  target: "string", stems: "number",
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
 * @property {number} [took] seconds generating (system, done; the track's `timing.generate_seconds`)
 * @property {number} [rtf] real-time factor (system, done)
 * @property {string} [device] where it was generated (system, done)
 * @property {string} [kind] `stems` or `demucs_any` for a stem split's message (absent for a generation)
 * @property {string} [label] what a split splits: the track's name or the uploaded file's name
 * @property {string} [source] the track a split splits (its message goes when the track is deleted)
 * @property {string} [set] the stems id of a split upload (`GET /api/stems_any/<set>`)
 * @property {number} [stems] how many stems a finished split made
 */

/**
 * A new record id, unique enough across tabs.
 * @returns {string}
 */
export function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * The records in storage, cleaned; an empty list when there are none or they are unreadable.
 * @returns {ChatRecord[]}
 */
export function readRecords() {
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
    if (typeof raw.error.field === "string") record.error.field = raw.error.field;
  }
  if (Array.isArray(raw.notes)) {
    record.notes = raw.notes
      .filter((note) => typeof note?.key === "string" && note.key.startsWith("note."))
      .map((note) => ({ key: note.key, vars: Object.fromEntries(Object.entries(note.vars ?? {}).map(([k, v]) => [k, String(v)])) }));
  }
  return record;
}

/**
 * Save the chat's records, dropping the oldest beyond MAX_RECORDS.
 * @param {{records: ChatRecord[]}} chat
 * @returns {void}
 */
export function persist(chat) {
  if (chat.records.length > MAX_RECORDS) chat.records.splice(0, chat.records.length - MAX_RECORDS);
  save(STORE_KEY, chat.records);
}

/**
 * The chat rebuilt from the server's tracks (a prompt and its answer per track), oldest first.
 * @returns {Promise<ChatRecord[]>} empty when the server cannot be asked
 */
export async function historyFromServer() {
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
    json: track.json, seed: track.meta?.parameters?.seed, job: track.meta?.job_id, ...timingFields(track.meta?.timing),
  };
  return [cleanRecord({ id: newId(), role: "user", at, text: String(track.meta?.prompt ?? ""), track: track.name, reply: answer.id }),
    cleanRecord(answer)];
}


/**
 * A track's `timing` as chat record fields (`took`, `rtf`, `device`); empty when it has none.
 * @param {object} [timing]
 * @returns {{took?: number, rtf?: number, device?: string}}
 */
export function timingFields(timing) {
  if (!timing || typeof timing !== "object") return {};
  return { took: timing.generate_seconds, rtf: timing.realtime_factor, device: timing.device };
}

/**
 * Whether a `storage` event's key is the stored chat (another tab saved it).
 * @param {string|null} key the event's key
 * @returns {boolean}
 */
export function isChatKey(key) {
  return key === storageKey(STORE_KEY);
}
