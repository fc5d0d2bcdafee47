/**
 * Gapless playback of a growing stream of PCM chunks with Web Audio: the engine of the player's live
 * mode. One AudioContext serves the page; each chunk becomes an AudioBuffer scheduled back to back at
 * `base + start / rate`, so the joins are sample-exact. When the next chunk is late (generation slower
 * than real time) the audio runs dry with a short fade and the stream reports `buffering`; the chunk that
 * ends the wait is scheduled a lead later (the schedule is re-based), fading in, and the lead doubles at
 * each wait, so a slow generation makes fewer, longer waits. Nothing is skipped and nothing overlaps.
 * Pause and stop fade out and suspend the context (no clicks).
 * @module player-stream
 */

/** MusicGen's codec rate: the context runs at it, so chunks need no resampling and join on whole frames. */
const CONTEXT_RATE = 32_000;
/** How far ahead the chunk that ends the first wait is scheduled, so that some audio is buffered again... */
const RESTART_LEAD_S = 0.3;
/** ... and the most it doubles to. */
const MAX_LEAD_S = 4;
/** A chunk whose slot is closer than this came late: the schedule moves later instead. */
const MIN_AHEAD_S = 0.05;
const FADE_S = 0.01;
const WATCH_MS = 40;
const INT16_SCALE = 32_768;

/**
 * @typedef {object} PcmChunk
 * @property {number} start index of the chunk's first frame in the stream
 * @property {number} sample_rate frames per second
 * @property {number} channels 1 or 2
 * @property {ArrayBuffer|ArrayBufferView} pcm little-endian int16 samples interleaved by channel
 */

/**
 * @typedef {object} DecodedChunk
 * @property {number} start index of the first frame
 * @property {number} rate frames per second
 * @property {Float32Array[]} data one array of samples in [-1, 1] per channel
 */

/**
 * A wire chunk as float samples per channel.
 * @param {PcmChunk} chunk
 * @returns {DecodedChunk}
 */
export function decodePcm(chunk) {
  const { pcm } = chunk;
  const view = ArrayBuffer.isView(pcm) ? new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength) : new DataView(pcm);
  const channels = Math.max(1, Number(chunk.channels) || 1);
  const frames = Math.floor(view.byteLength / 2 / channels);
  const data = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let frame = 0; frame < frames; frame += 1) {
    for (let channel = 0; channel < channels; channel += 1) {
      data[channel][frame] = view.getInt16((frame * channels + channel) * 2, true) / INT16_SCALE;
    }
  }
  return { start: Number(chunk.start) || 0, rate: Number(chunk.sample_rate) || CONTEXT_RATE, data };
}

/**
 * @typedef {"idle"|"buffering"|"playing"|"paused"|"ended"} StreamStatus
 * idle: no stream; buffering: waiting for audio; ended: everything received was played and no more comes.
 */

/**
 * A stream player. Call `unlock()` inside a user gesture (it creates or resumes the page's AudioContext),
 * `begin()` for each new stream, `push()` for each chunk in order, `complete()` once no more will come.
 * @param {() => void} onChange called whenever the status changes
 * @returns {{unlock: () => void, begin: (play: boolean) => void, push: (chunk: DecodedChunk) => void,
 *   complete: () => void, play: () => void, pause: () => void, stop: () => void, setVolume: (volume: number) => void,
 *   status: () => StreamStatus, position: () => number, buffered: () => number, wanted: () => boolean}}
 */
export function createStream(onChange) {
  const s = {
    onChange, context: null, master: null, fader: null, gate: null, sources: new Set(), volume: 1, running: false,
    token: 0, active: false, wanted: false, done: false, base: null, end: 0, fadeAt: 0, lead: 0, played: 0, timer: 0,
    status: "idle",
  };
  return {
    unlock: () => unlock(s),
    begin: (play) => begin(s, play),
    push: (chunk) => push(s, chunk),
    complete: () => { s.done = true; check(s); },
    play: () => { s.wanted = s.active; check(s); },
    pause: () => { s.wanted = false; check(s); },
    stop: () => stop(s),
    setVolume: (volume) => setVolume(s, volume),
    status: () => s.status,
    position: () => position(s),
    buffered: () => s.end,
    wanted: () => s.wanted,
  };
}

function unlock(s) {
  if (!s.context) {
    s.context = newContext();
    s.master = s.context.createGain();
    s.master.gain.value = s.volume;
    s.master.connect(s.context.destination);
  }
  s.context.resume().catch(() => {});
  s.running = true;
  check(s);
}

/** A context at the codec's rate, or at the device's where the browser cannot run one at another rate. */
function newContext() {
  try {
    return new AudioContext({ sampleRate: CONTEXT_RATE });
  } catch {
    return new AudioContext();
  }
}

/** Each stream gets its own pair of gains: `fader` for pause and stop, `gate` for the runs dry and restarts. */
function begin(s, play) {
  stop(s);
  if (!s.context) unlock(s);
  s.fader = s.context.createGain();
  s.gate = s.context.createGain();
  s.gate.connect(s.fader).connect(s.master);
  s.fader.gain.value = 0;
  Object.assign(s, { active: true, wanted: play, done: false, base: null, end: 0, played: 0, lead: RESTART_LEAD_S });
  s.timer = setInterval(() => check(s), WATCH_MS);
  check(s);
}

function push(s, chunk) {
  const frames = chunk.data[0]?.length ?? 0;
  if (!s.active || !frames) return;
  const { context } = s;
  const buffer = context.createBuffer(chunk.data.length, frames, chunk.rate);
  chunk.data.forEach((samples, channel) => buffer.copyToChannel(samples, channel));
  const offset = chunk.start / chunk.rate;
  const gate = s.gate.gain;
  const soonest = context.currentTime + MIN_AHEAD_S;
  const first = s.base === null;
  if (first || s.base + offset < soonest) {
    // The first chunk starts now; one that came after its slot starts a lead from now. Both fade in from silence.
    s.base = (first ? soonest : context.currentTime + s.lead) - offset;
    if (!first) s.lead = Math.min(s.lead * 2, MAX_LEAD_S);
    gate.setValueAtTime(0, s.base + offset);
    gate.linearRampToValueAtTime(1, s.base + offset + FADE_S);
  } else {
    gate.cancelScheduledValues(s.fadeAt); // it came in time: no fade-out where the audio would have run out
  }
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(s.gate);
  source.addEventListener("ended", () => {
    source.disconnect();
    s.sources.delete(source);
  });
  source.start(s.base + offset);
  s.sources.add(source);
  s.end = Math.max(s.end, offset + frames / chunk.rate);
  // Fade out where the audio runs out, unless the next chunk comes first and cancels this.
  s.fadeAt = s.base + s.end - FADE_S;
  gate.setValueAtTime(1, s.fadeAt);
  gate.linearRampToValueAtTime(0, s.base + s.end);
  check(s);
}

/** Seconds of audio scheduled ahead of the clock. */
function ahead(s) {
  return s.base === null ? 0 : s.base + s.end - s.context.currentTime;
}

/** Seconds of the stream played; it stays put while the stream waits for audio and never goes back. */
function position(s) {
  if (s.active && s.base !== null) {
    s.played = Math.max(s.played, Math.min(Math.max(s.context.currentTime - s.base, 0), s.end));
  }
  return s.played;
}

/** Follow the clock: run the context while there is audio to play and it is wanted, report status changes. */
function check(s) {
  if (s.active) position(s);
  const status = statusOf(s);
  sync(s, s.active && s.wanted && s.base !== null && status !== "ended");
  if (status !== s.status) {
    s.status = status;
    s.onChange();
  }
}

function statusOf(s) {
  if (!s.active) return "idle";
  const dry = s.base === null || ahead(s) <= 0;
  if (s.done && dry && s.base !== null) return "ended";
  if (!s.wanted) return "paused";
  return dry ? "buffering" : "playing";
}

/** Run or suspend the context, fading in and out. */
function sync(s, run) {
  if (!s.context || run === s.running) return;
  s.running = run;
  const token = ++s.token;
  if (run) s.context.resume().catch(() => {});
  if (s.fader) ramp(s.context, s.fader.gain, run ? 1 : 0);
  if (!run) {
    setTimeout(() => {
      if (token === s.token) s.context.suspend().catch(() => {});
    }, FADE_S * 2000);
  }
}

function ramp(context, param, target) {
  const now = context.currentTime;
  param.cancelScheduledValues(now);
  param.setValueAtTime(param.value, now);
  param.linearRampToValueAtTime(target, now + FADE_S);
}

function stop(s) {
  if (!s.active) return;
  s.active = false;
  clearInterval(s.timer);
  const { context, fader, sources } = s;
  const sounding = context.state === "running";
  ramp(context, fader.gain, 0);
  for (const source of sources) source.stop(sounding ? context.currentTime + FADE_S : 0);
  sources.clear();
  setTimeout(() => fader.disconnect(), sounding ? FADE_S * 2000 : 0);
  check(s);
}

function setVolume(s, volume) {
  s.volume = volume;
  if (s.master) s.master.gain.setTargetAtTime(volume, s.context.currentTime, FADE_S / 3);
}
