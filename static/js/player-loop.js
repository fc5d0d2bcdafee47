/**
 * The loop preview of a loop track (`meta.loop`): the file decoded once into a Web Audio buffer and played by an
 * AudioBufferSourceNode with `loop` on, which wraps sample-accurately (an <audio loop> leaves a gap at the wrap).
 * @module player-loop
 */
import { emit, on } from "./bus.js";
import { $ } from "./dom.js";

const SOURCE = "loop-preview";

/**
 * Wire the Loop preview button of the player.
 * @param {HTMLElement} box the player region
 * @returns {object} the preview's state
 */
export function initLoopPreview(box) {
  const state = { box, button: $("[data-action=player-loop-preview]", box), context: null, source: null, url: null, started: 0 };
  state.button.addEventListener("click", () => (state.source || state.started ? stop(state) : start(state)));
  on("audio:playing", ({ source }) => {
    if (source !== SOURCE) stop(state);
  });
  return state;
}

/**
 * Offer the preview for a loop track (and stop the previous track's).
 * @param {object} state
 * @param {{meta?: object}} track
 * @param {string} url the track's audio
 * @returns {void}
 */
export function showLoopPreview(state, track, url) {
  stop(state);
  state.url = url;
  state.button.hidden = !track.meta?.loop;
}

async function start(state) {
  const started = Date.now();
  state.started = started;
  setPlaying(state, true);
  emit("audio:playing", { source: SOURCE });
  try {
    state.context ??= new AudioContext();
    const data = await (await fetch(state.url)).arrayBuffer();
    const buffer = await state.context.decodeAudioData(data);
    if (state.started !== started) return; // stopped (or another track shown) while it loaded
    const source = state.context.createBufferSource();
    Object.assign(source, { buffer, loop: true });
    source.connect(state.context.destination);
    await state.context.resume();
    source.start();
    state.source = source;
    state.box.dataset.loopSeconds = buffer.duration.toFixed(3);
  } catch {
    stop(state);
    emit("toast:show", { key: "player.loop_failed", kind: "error" });
  }
}

function stop(state) {
  state.started = 0;
  state.source?.stop();
  state.source?.disconnect();
  state.source = null;
  setPlaying(state, false);
}

function setPlaying(state, playing) {
  state.button.setAttribute("aria-pressed", String(playing));
  state.box.dataset.loopPreview = playing ? "playing" : "off";
}
