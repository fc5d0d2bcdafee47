/**
 * The player's live mode: listen while it generates. A job's preview chunks (`audio_preview`: sent to the
 * submitting tab, or to any tab after `watch_preview`) play gapless through player-stream while the
 * player shows the live state (playing, buffering, paused, waiting for the final file, failed, cancelled),
 * the audio received so far and the MBD note; its toggle and volume drive the stream. When the job is done
 * the final file takes over at the same position (see `leaveLive`); a cancel (`job:cancel`) stops it at once.
 * Announces `live:show {label}` when a preview starts and `live:changed {jobId}` (null when none plays).
 * @module player-live
 */
import { emit, on } from "./bus.js";
import { $ } from "./dom.js";
import { errorOf, hasKey, translate } from "./i18n.js";
import { decodePcm, createStream } from "./player-stream.js";
import { request } from "./socket.js";

const SOURCE = "live";
const PEAK_FRAMES = 1024;
/** Phases after the last token: the preview is complete. */
const AFTER_GENERATING = new Set(["mbd", "postprocessing", "writing"]);
/** States of a preview that still plays (or waits for the final file). */
const PLAYING = new Set(["buffering", "playing", "paused", "ended"]);
/** How a job's end shows in the live player; any other end shows as `stopped`. */
const ENDINGS = new Set(["failed", "cancelled"]);
const QUIET_PEAK = 0.05;
/** The live view moves ten times a second: smooth enough, and it leaves the CPU to the generation. */
const REDRAW_MS = 100;

/**
 * @typedef {object} LiveView
 * @property {number} position seconds played
 * @property {number} duration seconds received
 * @property {boolean} playing the toggle shows Pause
 * @property {boolean} idle nothing to play (the preview stopped, or waits for the final file)
 * @property {number[]} peaks 0..1 per block of the audio received
 */

/**
 * Give the player its live mode.
 * @param {object} player the player's state (see initPlayer)
 * @param {{enabled: () => boolean, render: () => void}} hooks whether "Listen while generating" is on;
 *   redraw the player
 * @returns {object} the live state, for the other functions here
 */
export function initLive(player, hooks) {
  const live = {
    player, hooks, row: $("[data-role=player-live]", player.box), status: $("[data-role=live-status]", player.box),
    note: $("[data-role=live-mbd]", player.box), stream: null, state: "off", job: null, nextSeq: 0, mbd: false,
    peaks: [], loudest: 0, view: null, labels: new Map(), watched: new Set(), dropped: new Set(), timer: 0,
  };
  live.stream = createStream(() => changed(live));
  live.stream.setVolume(player.audio.volume);
  on("job:submit", ({ payload }) => {
    if (payload.preview) live.stream.unlock(); // inside the Generate click or key press: the page may play sound
  });
  on("composer:rerun", () => {
    if (hooks.enabled()) live.stream.unlock();
  });
  on("live:watch", ({ jobId }) => watch(live, jobId));
  on("audio_preview", (chunk) => receive(live, chunk));
  on("progress", ({ job_id: jobId, phase }) => {
    if (isCurrent(live, jobId) && AFTER_GENERATING.has(phase)) live.stream.complete();
  });
  on("on_finish_audio", (payload) => finished(live, payload));
  on("job:cancel", ({ jobId }) => {
    if (isCurrent(live, jobId)) end(live, "cancelled");
    else live.dropped.add(jobId); // a chunk already on its way must not start it
  });
  on("queue_state", (snapshot) => {
    live.labels = new Map([snapshot.running, ...(snapshot.queued ?? [])].filter(Boolean).map((job) => [job.id, job.label]));
  });
  on("audio:playing", ({ source }) => {
    if (source !== SOURCE) live.stream.pause();
  });
  on("connection:changed", ({ connected }) => {
    if (connected && isCurrent(live, live.job)) rejoin(live);
  });
  return live;
}

/**
 * Whether the player shows the live preview (playing, or its end state) rather than a file.
 * @param {object} live
 * @returns {boolean}
 */
export function isLive(live) {
  return live.state !== "off";
}

/**
 * What the player draws in live mode.
 * @param {object} live
 * @returns {LiveView}
 */
export function liveView(live) {
  if (!live.view) {
    const scale = 1 / Math.max(live.loudest, QUIET_PEAK);
    live.view = Array.from(live.peaks, (peak) => (peak ?? 0) * scale);
  }
  const status = live.stream.status();
  return {
    position: live.stream.position(), duration: live.stream.buffered(), peaks: live.view,
    playing: live.stream.wanted() && status !== "ended", idle: status === "idle" || status === "ended",
  };
}

/**
 * The toggle in live mode: pause, or play on.
 * @param {object} live
 * @returns {void}
 */
export function toggleLive(live) {
  if (live.stream.wanted()) {
    live.stream.pause();
    return;
  }
  live.stream.unlock();
  live.stream.play();
  emit("audio:playing", { source: SOURCE });
}

/**
 * The player's volume applies to the preview too.
 * @param {object} live
 * @param {number} volume 0..1
 * @returns {void}
 */
export function setLiveVolume(live, volume) {
  live.stream.setVolume(volume);
}

/**
 * The player is about to load a track: leave live mode. When the track is the final file of the job being
 * previewed, the preview keeps playing until the file can take over: the returned function, called then,
 * stops the preview and says where and how the file goes on.
 * @param {object} live
 * @param {{meta?: object}} track the track the player loads
 * @returns {(() => {seconds: number, play: boolean}) | null} the hand-over, or null (the preview stopped now)
 */
export function leaveLive(live, track) {
  const { meta } = track;
  if (!isCurrent(live, meta?.job_id)) {
    if (isLive(live)) end(live, "off");
    return null;
  }
  live.stream.complete();
  const params = meta.parameters ?? {};
  const clip = params.append_mode ? Number(params.continuation_original_seconds) || 0 : 0; // the file starts with the clip
  return () => {
    const carry = { seconds: live.stream.position() + clip, play: live.stream.wanted() };
    if (live.job === meta.job_id) end(live, "off");
    return carry;
  };
}

// ---- the preview of one job -------------------------------------------------------------------

function isCurrent(live, jobId) {
  return Boolean(jobId) && live.job === jobId && live.stream.status() !== "idle";
}

function begin(live, jobId, play) {
  if (isCurrent(live, live.job)) live.dropped.add(live.job);
  Object.assign(live, { job: jobId, nextSeq: 0, mbd: false, peaks: [], loudest: 0, view: null });
  live.stream.begin(play);
  if (play) emit("audio:playing", { source: SOURCE });
  emit("live:show", { label: live.labels.get(jobId) ?? "" });
  emit("live:changed", { jobId });
}

/** Stop the preview and show how it ended (`off`: the player shows a file again). */
function end(live, state) {
  if (live.job) live.dropped.add(live.job);
  live.stream.stop();
  live.state = state;
  show(live);
  emit("live:changed", { jobId: null });
}

function receive(live, chunk) {
  const jobId = chunk.job_id;
  if (!isCurrent(live, jobId)) {
    if (live.dropped.has(jobId)) return;
    if (!live.watched.has(jobId) && !live.hooks.enabled()) {
      live.dropped.add(jobId); // "Listen while generating" is off (a rerun of a track made with it on)
      return;
    }
    begin(live, jobId, true);
  }
  if (chunk.seq < live.nextSeq) return; // a rejoin sends the chunks made so far again
  live.nextSeq = chunk.seq + 1;
  live.mbd ||= chunk.mbd === true;
  const decoded = decodePcm(chunk);
  addPeaks(live, decoded);
  live.stream.push(decoded);
  show(live);
}

function addPeaks(live, { start, data }) {
  const first = Math.floor(start / PEAK_FRAMES);
  for (let block = 0; block * PEAK_FRAMES < data[0].length; block += 1) {
    let peak = 0;
    for (const samples of data) {
      const last = Math.min(samples.length, (block + 1) * PEAK_FRAMES);
      for (let index = block * PEAK_FRAMES; index < last; index += 1) peak = Math.max(peak, Math.abs(samples[index]));
    }
    live.peaks[first + block] = peak;
    live.loudest = Math.max(live.loudest, peak);
  }
  live.view = null;
}

function finished(live, payload) {
  if (!isCurrent(live, payload.job_id)) return;
  if (payload.state === "done") {
    // The final file takes over (leaveLive); the chat announces it too for this tab's own jobs.
    emit("track:show", { name: payload.name, audio: payload.filename, json: payload.json_filename, meta: payload.meta });
  } else {
    end(live, ENDINGS.has(payload.state) ? payload.state : "stopped");
  }
}

// ---- listening from another tab ---------------------------------------------------------------

/**
 * The queue's Listen (inside the click): ask the server for a running or queued job's preview. The chunks
 * made so far come before the ack and start the preview; a job with none yet shows as buffering.
 */
async function watch(live, jobId) {
  live.stream.unlock();
  if (isCurrent(live, jobId)) {
    if (!live.stream.wanted()) toggleLive(live);
    return;
  }
  live.watched.add(jobId);
  live.dropped.delete(jobId);
  const ack = await request("watch_preview", { job_id: jobId });
  if (ack.ok) {
    if (!isCurrent(live, jobId) && !live.dropped.has(jobId)) begin(live, jobId, true);
    return;
  }
  live.watched.delete(jobId);
  const type = ack.error?.type;
  if (hasKey(`live.error.${type}`)) emit("toast:show", { key: `live.error.${type}`, kind: "error" });
  else emit("toast:show", { key: "error.line", vars: { error: errorOf(ack.error) }, kind: "error" });
}

/** After a reconnect the server no longer knows this tab: ask for the preview again (repeats are skipped). */
async function rejoin(live) {
  const jobId = live.job;
  const ack = await request("watch_preview", { job_id: jobId });
  if (!ack.ok && isCurrent(live, jobId)) end(live, "stopped");
}

// ---- what the player shows --------------------------------------------------------------------

function changed(live) {
  const status = live.stream.status();
  if (status !== "idle") live.state = status;
  show(live);
  clearInterval(live.timer);
  if (status === "playing") live.timer = setInterval(() => show(live), REDRAW_MS);
}

function show(live) {
  const { player, state } = live;
  const on = state !== "off";
  if (player.box.dataset.live !== state) player.box.dataset.live = state;
  if (on) player.box.dataset.liveTime = live.stream.position().toFixed(2);
  else delete player.box.dataset.liveTime;
  live.row.hidden = !on;
  live.note.hidden = !live.mbd || !PLAYING.has(state);
  player.loop.hidden = on;
  player.download.hidden = on;
  if (on && live.status.dataset.i18n !== `live.${state}`) translate(live.status, `live.${state}`);
  live.hooks.render();
}
