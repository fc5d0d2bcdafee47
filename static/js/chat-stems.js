/**
 * Stem splits in the chat: one system message per split job (a track split after its generation or on request,
 * or an uploaded file split in the Demucs panel), keyed by its job id like a generation's, with the phase, the
 * percent, and at the end the number of stems and a button that shows them, or the error. A split gets a
 * message when this tab asked for it (`stems:requested`) or when the chat holds its track.
 * @module chat-stems
 */
import { on } from "./bus.js";
import { TERMINAL } from "./chat-records.js";
import { addRecord, update } from "./chat-view.js";

/** The job kinds of a split, as the server names them. */
export const STEM_KINDS = new Set(["stems", "demucs_any"]);

function stemRecord(chat, jobId) {
  return chat.records.find((record) => STEM_KINDS.has(record.kind) && record.job === jobId);
}

function knowsTrack(chat, name) {
  return Boolean(name) && chat.records.some((record) => record.track === name);
}

/** A message for a split, unless it has one already. */
function openSplit(chat, { jobId, kind, label, source, set, target, position }) {
  if (!jobId || stemRecord(chat, jobId)) return;
  addRecord(chat, { role: "system", kind, job: jobId, label: String(label ?? ""), source, set, target, state: "queued", progress: 0, position });
}

function patchSplit(chat, jobId, changes) {
  const record = stemRecord(chat, jobId);
  if (record && !TERMINAL.has(record.state)) update(chat, record, changes);
}

/**
 * End a split's message: done with its stem count, or failed / cancelled / interrupted with the error.
 * @param {object} chat the chat state
 * @param {object} record the split's record
 * @param {{state: string, error?: object, stems?: unknown[]}} payload the terminal event (or the queue's account)
 * @returns {void}
 */
export function closeSplit(chat, record, payload) {
  if (TERMINAL.has(record.state)) return;
  update(chat, record, payload.state === "done"
    ? { state: "done", progress: 1, stems: Array.isArray(payload.stems) ? payload.stems.length : undefined, error: undefined }
    : { state: payload.state, error: payload.error ?? undefined }, true);
}

/**
 * Follow every split's events.
 * @param {object} chat the chat state (see initChat in chat.js)
 * @returns {void}
 */
export function bindSplitEvents(chat) {
  on("stems:requested", (info) => openSplit(chat, info));
  on("postprocess_queued", ({ job_id: jobId, name, target, position }) => {
    if (knowsTrack(chat, name)) openSplit(chat, { jobId, kind: "stems", label: name, source: name, target, position });
  });
  for (const event of ["stem_progress", "demucs_any_progress"]) {
    on(event, ({ job_id: jobId, progress, phase }) => patchSplit(chat, jobId, { state: "running", progress, phase }));
  }
  on("postprocess_done", (payload) => {
    // A split that could not even be queued after its generation carries the generation's job id.
    if (!stemRecord(chat, payload.job_id) && payload.state !== "done" && knowsTrack(chat, payload.name)) {
      openSplit(chat, { jobId: payload.job_id, kind: "stems", label: payload.name, source: payload.name, target: payload.target });
    }
    const record = stemRecord(chat, payload.job_id);
    if (record) closeSplit(chat, record, payload);
  });
  on("demucs_any_done", (payload) => {
    const record = stemRecord(chat, payload.job_id);
    if (record) closeSplit(chat, record, payload);
  });
}
