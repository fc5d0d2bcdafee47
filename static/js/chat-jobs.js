/**
 * The life of each job started from this tab: the submit or rerun and its ack, the job's events, and
 * reconciliation with the server's queue snapshots. Every job has ONE system message, keyed by its
 * job id, showing the queue position, then the phase and percent, and ending with the file link or
 * the error. The double-submit guard lives here too: `composer:busy` is true while one of this tab's
 * jobs is open, and is released on done, refusal, failure (a job failing on the worker must not lock
 * the UI), cancel or loss. Each job it cancels is announced first (`job:cancel`), so its preview stops at once.
 * After a reload, an open job is this tab's own (guarded, cancelled by its Cancel) only when the server's queue says
 * so: its `owner` is the `owner` the `session` event gave this page (other tabs' jobs are followed, not guarded).
 * How each of its own jobs ended is announced as `job:finished {jobId, state, seed, text, rerun}`.
 * @module chat-jobs
 */
import { emit, on } from "./bus.js";
import { persist, TERMINAL, timingFields } from "./chat-records.js";
import { closeSplit, STEM_KINDS } from "./chat-stems.js";
import { addRecord, update } from "./chat-view.js";
import { autoTuneChanges } from "./render.js";
import { request } from "./socket.js";

const EARLY_LIMIT = 50;

/**
 * Jobs still open in storage are followed until the server says how they ended; one never sent is lost. Which
 * of them are this tab's own is known once the server's queue snapshot names their owner (see reconcile).
 * @param {object} chat the chat state (see initChat in chat.js)
 * @returns {void}
 */
export function adoptOpenJobs(chat) {
  for (const record of chat.records) {
    if (record.role !== "system" || TERMINAL.has(record.state) || record.job) continue;
    Object.assign(record, { state: "interrupted", error: { type: "lost" } });
  }
}

function jobRecord(chat, jobId) {
  return chat.records.find((record) => record.role === "system" && record.job === jobId);
}

// ---- the job of a submit or a rerun --------------------------------------------------------------

/**
 * Tell the composer whether one of this tab's jobs is open (`composer:busy`).
 * @param {object} chat the chat state
 * @returns {void}
 */
export function updateGuard(chat) {
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
  nextInList(chat, "refused");
  if (error.field) emit("settings:field-error", { field: error.field });
}

function release(chat, record) {
  if (chat.pending.delete(record.id)) updateGuard(chat);
}

async function cancelPending(chat) {
  for (const record of chat.records.filter((item) => chat.pending.has(item.id) && item.job)) {
    emit("job:cancel", { jobId: record.job });
    const ack = await request("cancel_job", { job_id: record.job });
    if (!ack.ok && ack.error?.type === "not_found") finish(chat, { job_id: record.job, state: "cancelled" });
  }
}

// ---- job events -------------------------------------------------------------------------------

/**
 * Follow the server's job events and the composer's submit, rerun and cancel.
 * @param {object} chat the chat state
 * @returns {void}
 */
export function bindJobEvents(chat) {
  on("job_started", ({ job_id: jobId }) => patchJob(chat, jobId, { state: "running", phase: "starting" }));
  on("progress", ({ job_id: jobId, progress, phase, downloaded_bytes: downloaded, total_bytes: total }) => {
    patchJob(chat, jobId, { state: "running", progress, phase, downloaded, total });
  });
  on("update_seed", ({ job_id: jobId, seed }) => patchJob(chat, jobId, { seed }));
  on("continuation_applied", ({ job_id: jobId, continuation_original_seconds: seconds }) => {
    if (seconds !== undefined) patchJob(chat, jobId, { continuation: seconds });
  });
  on("on_finish_audio", (payload) => finish(chat, payload));
  on("session", ({ owner }) => { chat.owner = owner ?? null; });
  on("queue_state", (snapshot) => reconcile(chat, snapshot));
  // The server sends audio_json_pairs only on connect, right before that connection's queue snapshot.
  on("audio_json_pairs", () => { chat.connectSnapshot = true; });
  on("job:submit", ({ text, payload }) => startJob(chat, { text }, () => request("submit_sliders", payload)));
  on("job:submit-list", ({ items }) => {
    if (chat.pending.size) return;
    chat.list = items.slice(1);
    submitItem(chat, items[0]);
  });
  on("composer:rerun", ({ name, prompt, preview }) => startJob(chat, { text: prompt, rerun: true }, () => request("rerun", { name, preview })));
  on("composer:cancel", () => cancelPending(chat));
}

function submitItem(chat, { text, payload }) {
  startJob(chat, { text }, () => request("submit_sliders", payload));
}

/** A prompt list goes on with its next prompt once a job ends; a cancel or a refusal drops the rest. */
function nextInList(chat, state) {
  const rest = chat.list ?? [];
  chat.list = [];
  if (rest.length && !["cancelled", "refused"].includes(state)) {
    chat.list = rest.slice(1);
    submitItem(chat, rest[0]);
  }
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
  if (STEM_KINDS.has(record.kind)) {
    closeSplit(chat, record, { ...payload, stems: payload.stems ?? payload.result?.stems });
    return;
  }
  const done = payload.state === "done";
  const takes = payload.takes?.map((take) => ({ track: take.name, audio: take.filename, json: take.json_filename, seed: take.seed }));
  update(chat, record, done
    ? { state: "done", progress: 1, seed: payload.seed, track: payload.name, audio: payload.filename, json: payload.json_filename,
      takes, error: undefined, ...timingFields(payload.meta?.timing) }
    : { state: payload.state, error: payload.error ?? undefined });
  const user = chat.records.find((item) => item.reply === record.id);
  if (done && user) user.track = payload.name;
  persist(chat);
  if (!chat.pending.has(record.id)) return;
  release(chat, record);
  emit("job:finished", { jobId: payload.job_id, state: payload.state, seed: payload.seed, text: user?.text, rerun: Boolean(user?.rerun) });
  if (done) emit("track:show", { name: payload.name, audio: payload.filename, json: payload.json_filename, meta: payload.meta, takes: record.takes, reveal: true });
  nextInList(chat, payload.state);
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
    if (canLose && job?.kind === "generate" && chat.owner && job.owner === chat.owner && !chat.pending.has(record.id)) {
      chat.pending.add(record.id); // this tab's own job, from before a reload
      updateGuard(chat);
    }
    if (!job) {
      if (canLose) finish(chat, { job_id: record.job, state: "interrupted", error: { type: "lost" } });
    } else if (job.state === "done") finish(chat, { ...job.result, job_id: job.id, state: "done" });
    else if (TERMINAL.has(job.state)) finish(chat, { job_id: job.id, state: job.state, error: job.error });
    else patchJob(chat, job.id, { state: job.state, progress: job.progress, phase: job.phase, position: job.position });
  }
}
