/**
 * The custom player of the active track: play/pause, a waveform (from the track JSON's peaks) that
 * shows the play position and seeks on click, drag or arrow keys, loop, volume and a download link
 * with the file's real extension. While a job generates, the player can be live (player-live): it plays
 * the preview, then hands over to the final file at the same position. Only one source plays at a time
 * (`audio:playing`).
 * @module player
 */
import { emit, on } from "./bus.js";
import { $, assetUrl, fileName, formatTime } from "./dom.js";
import { t } from "./i18n.js";
import { initLive, isLive, leaveLive, liveView, setLiveVolume, toggleLive } from "./player-live.js";
import { initLoopPreview, showLoopPreview } from "./player-loop.js";
import { initTakes, resumeAt, showTakes } from "./player-takes.js";
import { getSettings } from "./settings.js";
import { load, save } from "./store.js";

const VOLUME_KEY = "player.volume";
const KEY_STEP_S = 5;
const SOURCE = "player";

/**
 * Wire the player region of the track card.
 * @param {ParentNode} root the page
 * @returns {void}
 */
export function initPlayer(root) {
  const box = $("[data-role=player]", root);
  const player = {
    box,
    audio: $("[data-role=player-audio]", box),
    toggle: $("[data-action=player-toggle]", box),
    wave: $("[data-role=waveform]", box),
    time: $("[data-role=player-time]", box),
    loop: $("[data-action=player-loop]", box),
    volume: $("[data-role=player-volume]", box),
    download: $("[data-role=player-download]", box),
    name: null,
    peaks: [],
    colors: null, // the waveform's resolved colours, read again when the theme changes
    frame: 0,
    handover: null,
    live: null,
  };
  const volume = Number(load(VOLUME_KEY, 1));
  player.audio.volume = Number.isFinite(volume) ? Math.min(Math.max(volume, 0), 1) : 1;
  player.volume.value = String(player.audio.volume);
  player.live = initLive(player, { enabled: () => getSettings().preview, render: () => render(player) });
  player.takes = initTakes(box);
  player.loopPreview = initLoopPreview(box);
  bindControls(player);
  bindAudio(player);
  bindSeeking(player);
  new ResizeObserver(() => draw(player)).observe(player.wave);
  on("track:show", (track) => loadTrack(player, track));
  on("tracks:removed", ({ all, names }) => {
    if (player.name && (all || names.includes(player.name))) unload(player);
  });
  on("audio:playing", ({ source }) => {
    if (source !== SOURCE) player.audio.pause();
  });
  on("theme:changed", () => {
    player.colors = null; // resolved again from the new palette at the next draw
    draw(player);
  });
}

function loadTrack(player, track) {
  if (player.handover && player.name === track.name) return; // this very track is taking over from the preview
  player.handover?.abort();
  player.handover = null;
  const url = assetUrl(track.audio);
  const carry = leaveLive(player.live, track);
  const keep = track.keepPosition ? { time: player.audio.currentTime, playing: !player.audio.paused } : null;
  player.name = track.name;
  player.peaks = Array.isArray(track.meta?.waveform) ? track.meta.waveform.map(Number) : [];
  player.audio.src = url;
  player.download.href = url;
  player.download.download = fileName(track.audio);
  showTakes(player.takes, track);
  showLoopPreview(player.loopPreview, track, url);
  if (carry) handOver(player, carry);
  else if (keep) resumeAt(player.audio, keep);
  render(player);
}

/** The final file goes on from where the preview is once it can seek; the preview plays until then. */
function handOver(player, carry) {
  const { audio } = player;
  const handover = new AbortController();
  player.handover = handover;
  const take = () => {
    handover.abort();
    player.handover = null;
    const { seconds, play } = carry();
    const end = Number.isFinite(audio.duration) ? audio.duration : 0;
    audio.currentTime = Math.min(seconds, end);
    if (play && seconds < end) audio.play().catch(() => {});
    render(player);
  };
  audio.addEventListener("loadedmetadata", take, { signal: handover.signal });
  audio.addEventListener("error", take, { signal: handover.signal });
}

function unload(player) {
  if (player.handover) {
    player.handover.abort();
    player.handover = null;
    leaveLive(player.live, {}); // the file that was taking over is gone
  }
  player.audio.pause();
  player.audio.removeAttribute("src");
  player.audio.load();
  player.name = null;
  player.peaks = [];
  render(player);
}

function bindControls(player) {
  player.toggle.addEventListener("click", () => {
    if (isLive(player.live)) toggleLive(player.live);
    else if (player.audio.paused) player.audio.play().catch(() => {});
    else player.audio.pause();
  });
  player.loop.addEventListener("click", () => {
    player.audio.loop = !player.audio.loop;
    player.loop.setAttribute("aria-pressed", String(player.audio.loop));
  });
  player.volume.addEventListener("input", () => {
    player.audio.volume = Number(player.volume.value);
    setLiveVolume(player.live, player.audio.volume);
    save(VOLUME_KEY, player.audio.volume);
  });
}

function bindAudio(player) {
  const { audio } = player;
  audio.addEventListener("play", () => {
    emit("audio:playing", { source: SOURCE });
    tick(player);
  });
  for (const type of ["pause", "ended", "timeupdate", "loadedmetadata", "seeked", "emptied"]) {
    audio.addEventListener(type, () => render(player));
  }
}

/** Redraw every animation frame while playing, so the position moves smoothly. */
function tick(player) {
  cancelAnimationFrame(player.frame);
  render(player);
  if (!player.audio.paused) player.frame = requestAnimationFrame(() => tick(player));
}

function bindSeeking(player) {
  const seekTo = (event) => {
    const box = player.wave.getBoundingClientRect();
    seek(player, ((event.clientX - box.left) / box.width) * (player.audio.duration || 0));
  };
  player.wave.addEventListener("pointerdown", (event) => {
    player.wave.setPointerCapture(event.pointerId);
    seekTo(event);
  });
  player.wave.addEventListener("pointermove", (event) => {
    if (player.wave.hasPointerCapture(event.pointerId)) seekTo(event);
  });
  player.wave.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: -KEY_STEP_S, ArrowRight: KEY_STEP_S, ArrowDown: -KEY_STEP_S, ArrowUp: KEY_STEP_S };
    const { currentTime, duration } = player.audio;
    const targets = { Home: 0, End: duration || 0 };
    if (event.key in moves) seek(player, currentTime + moves[event.key]);
    else if (event.key in targets) seek(player, targets[event.key]);
    else if (event.key === " ") player.toggle.click();
    else return;
    event.preventDefault();
  });
}

function seek(player, seconds) {
  const duration = player.audio.duration;
  if (isLive(player.live) || !Number.isFinite(duration) || duration <= 0) return;
  player.audio.currentTime = Math.min(Math.max(seconds, 0), duration);
  render(player);
}

/** What the player shows: the live preview's view, or the file's. */
function view(player) {
  if (isLive(player.live)) return liveView(player.live);
  const { audio } = player;
  const duration = Number.isFinite(audio.duration) ? audio.duration : 0;
  return { position: audio.currentTime, duration, playing: !audio.paused, idle: false, peaks: player.peaks };
}

function render(player) {
  const { toggle, wave, time } = player;
  const shown = view(player);
  const { position, duration, playing } = shown;
  toggle.dataset.state = playing ? "playing" : "paused";
  toggle.disabled = shown.idle;
  const label = playing ? "player.pause" : "player.play";
  toggle.dataset.i18nAttr = `aria-label:${label}`;
  toggle.setAttribute("aria-label", t(label));
  time.textContent = `${formatTime(position)} / ${formatTime(duration)}`;
  wave.setAttribute("aria-valuemax", String(Math.round(duration)));
  wave.setAttribute("aria-valuenow", String(Math.round(position)));
  wave.setAttribute("aria-valuetext", time.textContent);
  wave.dataset.position = duration ? (position / duration).toFixed(3) : "0";
  draw(player, shown);
}

/**
 * The waveform's colours as the canvas can use them. The stylesheet's variables are `light-dark()` pairs, which
 * only an element's computed colour resolves, so they are read once per theme, not at every frame.
 * @param {Element} parent where the variables are read
 * @returns {{played: string, rest: string, cursor: string}} `rgb()` colours
 */
function waveColors(parent) {
  const probe = document.createElement("span");
  parent.append(probe);
  const read = (name) => {
    probe.style.color = `var(${name})`;
    return getComputedStyle(probe).color;
  };
  const colors = { played: read("--wave-played"), rest: read("--wave-rest"), cursor: read("--wave-cursor") };
  probe.remove();
  return colors;
}

/** Peaks as bars: the played part in the accent colour, a line at the play position. */
function draw(player, { position, duration, peaks } = view(player)) {
  const { wave } = player;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(wave.clientWidth * ratio);
  const height = Math.round(wave.clientHeight * ratio);
  if (!width || !height) return;
  if (wave.width !== width || wave.height !== height) Object.assign(wave, { width, height });
  const ctx = wave.getContext("2d");
  player.colors ??= waveColors(wave.parentElement);
  const { played: playedColor, rest: restColor, cursor: cursorColor } = player.colors;
  const played = duration ? position / duration : 0;
  ctx.clearRect(0, 0, width, height);
  const bar = Math.max(1, Math.floor(2 * ratio));
  const middle = height / 2;
  for (let x = 0; x < width; x += bar + 1) {
    const peak = peaks.length ? peaks[Math.min(peaks.length - 1, Math.floor((x / width) * peaks.length))] : 0;
    const half = Math.max(ratio, Math.min(1, Math.abs(peak)) * middle * 0.95);
    ctx.fillStyle = x / width <= played ? playedColor : restColor;
    ctx.fillRect(x, middle - half, bar, half * 2);
  }
  ctx.fillStyle = cursorColor;
  ctx.fillRect(Math.min(width - ratio, played * width), 0, ratio, height);
}
