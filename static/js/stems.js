/**
 * Stems: "Separate stems" for the active track (`request_stems`), its progress, and the mixer shown
 * when there are stems (of a track, or of any file via `stems:show`): per-stem play, solo, mute and
 * volume, synchronised playback through Web Audio, and the downloads the server builds: a 16-bit WAV
 * mixdown of the selected stems as the user hears them (solo, mute and volume applied) and a ZIP of
 * the selected or of all stems, saved under the page's own file names.
 * @module stems
 */
import { emit, on } from "./bus.js";
import { $, $$, assetUrl, delegate, el, fileStamp, saveBlob, stemOf } from "./dom.js";
import { getBlob, getBytes, getJson, HttpError, postJsonForBlob } from "./http.js";
import { clearText, errorOf, hasKey, translate } from "./i18n.js";
import { setProgress, stemRowNode } from "./render.js";
import { request } from "./socket.js";

const SOURCE = "stems";
const START_DELAY_S = 0.05;
const DEFAULT_TARGET = "all";

/**
 * Wire the stems panel.
 * @param {ParentNode} root the page
 * @param {{stem_targets: string[]}} boot
 * @returns {void}
 */
export function initStems(root, boot) {
  const panel = $("[data-role=stems]", root);
  const mixer = {
    panel,
    title: $("[data-role=stems-title]", panel),
    bar: $("[data-role=stems-bar]", panel),
    status: $("[data-role=stems-status]", panel),
    split: $("[data-role=stems-split]", panel),
    target: $("[data-role=stems-target]", panel),
    box: $("[data-role=mixer]", panel),
    list: $("[data-role=stem-list]", panel),
    toggle: $("[data-action=mixer-toggle]", panel),
    source: null,
    stems: [],
    controls: new Map(),
    buffers: new Map(),
    context: null,
    voices: [],
  };
  mixer.target.replaceChildren(...boot.stem_targets.filter(Boolean).map((target) => {
    const node = el("option", { attrs: { value: target, selected: target === DEFAULT_TARGET } });
    return hasKey(`stem_split.${target}`) ? translate(node, `stem_split.${target}`) : Object.assign(node, { textContent: target });
  }));
  bindServerEvents(mixer);
  bindControls(mixer);
  on("track:show", (track) => showTrack(mixer, track));
  on("stems:show", ({ id, name, stems }) => {
    setSource(mixer, { kind: "any", id, name });
    translate(mixer.title, "stems.any_title", { name });
    mixer.split.hidden = true;
    showStems(mixer, stems);
  });
  on("tracks:removed", ({ all, names, clearAll }) => {
    if (mixer.source?.kind === "track" && (all || names.includes(mixer.source.name))) hide(mixer);
    else if (mixer.source?.kind === "any" && clearAll) hide(mixer); // Clear all removes the stems of uploads
  });
  on("live:show", () => {
    if (mixer.source?.kind === "track") hide(mixer); // the card no longer shows that track
  });
  on("audio:playing", ({ source }) => {
    if (source !== SOURCE) stop(mixer);
  });
}

// ---- what the panel shows ---------------------------------------------------------------------

function setSource(mixer, source) {
  stop(mixer);
  mixer.source = source;
  mixer.stems = [];
  mixer.buffers = new Map(); // a new map: a decode still running for the previous source fills the old one
  mixer.controls.clear();
  mixer.list.replaceChildren();
  mixer.box.hidden = true;
  mixer.bar.hidden = true;
  setStatus(mixer, null);
  mixer.panel.hidden = false;
}

function hide(mixer) {
  setSource(mixer, null);
  mixer.panel.hidden = true;
}

/** A track shows its stems when it has some, else the "Separate stems" action and any split under way. */
async function showTrack(mixer, track) {
  setSource(mixer, { kind: "track", name: track.name });
  translate(mixer.title, "stems.heading");
  mixer.split.hidden = false;
  let answer;
  try {
    answer = await getJson(`/api/stems/${encodeURIComponent(track.name)}`);
  } catch (error) {
    setStatus(mixer, "stems.failed", { message: errorOf(error) }, "error");
    return;
  }
  if (!isCurrent(mixer, track.name)) return;
  showStems(mixer, answer.stems ?? []);
  const status = answer.task?.status;
  if (status === "queued" || status === "running") setStatus(mixer, status === "queued" ? "stems.queued" : "stems.separating");
  else if (status === "failed" && !mixer.stems.length) setStatus(mixer, "stems.failed", { message: errorOf(answer.task.error ?? "") }, "error");
}

function showStems(mixer, stems) {
  mixer.stems = stems.map((stem) => (typeof stem === "string" ? { name: stemOf(stem), url: stem } : stem));
  mixer.controls = new Map(mixer.stems.map((stem) => [stem.name, { selected: true, solo: false, mute: false, volume: 1 }]));
  mixer.list.replaceChildren(...mixer.stems.map(stemRowNode));
  mixer.box.hidden = mixer.stems.length === 0;
  mixer.split.hidden = mixer.source?.kind !== "track" || mixer.stems.length > 0;
}

function setStatus(mixer, key, vars, kind = "") {
  if (key) translate(mixer.status, key, vars);
  else clearText(mixer.status);
  mixer.status.dataset.kind = kind;
}

function isCurrent(mixer, name) {
  return mixer.source?.kind === "track" && mixer.source.name === name;
}

function bindServerEvents(mixer) {
  on("postprocess_queued", ({ name }) => {
    if (isCurrent(mixer, name)) setStatus(mixer, "stems.queued");
  });
  on("stem_progress", ({ name, progress, phase }) => {
    if (!isCurrent(mixer, name)) return;
    mixer.bar.hidden = false;
    setProgress(mixer.bar, progress);
    setStatus(mixer, hasKey(`phase.${phase}`) ? `phase.${phase}` : "stems.separating");
  });
  on("postprocess_done", ({ name, state, stems, error }) => {
    if (!isCurrent(mixer, name)) return;
    mixer.bar.hidden = true;
    if (state === "done") {
      setStatus(mixer, null);
      showStems(mixer, stems ?? []);
    } else {
      setStatus(mixer, state === "cancelled" ? "job.state.cancelled" : "stems.failed", { message: errorOf(error ?? "") }, "error");
    }
  });
}

// ---- controls ---------------------------------------------------------------------------------

function bindControls(mixer) {
  const { panel } = mixer;
  delegate(panel, "click", "[data-action]", (event, button) => {
    const row = button.closest("[data-role=stem]");
    const action = button.dataset.action;
    if (row) onStemAction(mixer, row, button, action);
    else onMixerAction(mixer, action);
  });
  delegate(panel, "input", "[data-role=stem-volume]", (event, input) => {
    controlOf(mixer, input).volume = Number(input.value);
    applyGains(mixer);
  });
  delegate(panel, "change", "[data-role=stem-select]", (event, input) => {
    controlOf(mixer, input).selected = input.checked;
  });
}

function controlOf(mixer, node) {
  return mixer.controls.get(node.closest("[data-role=stem]").dataset.stem);
}

function onStemAction(mixer, row, button, action) {
  const control = controlOf(mixer, row);
  if (action === "stem-play") {
    const solo = mixer.voices.length === 1 && mixer.voices[0].name === row.dataset.stem;
    if (solo) stop(mixer);
    else play(mixer, [row.dataset.stem]);
    return;
  }
  const field = action === "stem-solo" ? "solo" : "mute";
  control[field] = !control[field];
  button.setAttribute("aria-pressed", String(control[field]));
  applyGains(mixer);
}

function onMixerAction(mixer, action) {
  const all = mixer.stems.map((stem) => stem.name);
  const selected = all.filter((name) => mixer.controls.get(name)?.selected);
  const run = {
    "request-stems": () => requestStems(mixer),
    "mixer-toggle": () => (mixer.voices.length ? stop(mixer) : play(mixer, all)),
    "mixer-mixdown": () => downloadMix(mixer, selected),
    "mixer-zip-selected": () => downloadZip(mixer, selected),
    "mixer-zip-all": () => downloadZip(mixer, all),
  }[action];
  Promise.resolve(run?.()).catch((error) => showError(mixer, error));
}

async function requestStems(mixer) {
  if (mixer.source?.kind !== "track") return;
  setStatus(mixer, "stems.requesting");
  const { name } = mixer.source;
  const target = mixer.target.value;
  const ack = await request("request_stems", { name, target });
  if (ack.ok) {
    setStatus(mixer, "stems.queued");
    emit("stems:requested", { jobId: ack.job_id, kind: "stems", label: name, source: name, target, position: ack.position });
  }
  else setStatus(mixer, "stems.failed", { message: errorOf(ack.error) }, "error");
}

// ---- audio ------------------------------------------------------------------------------------

/** Fetch and decode (once) the stems named; the AudioContext is made on the first user action. */
async function decode(mixer, names) {
  mixer.context ??= new AudioContext();
  const { buffers } = mixer;
  await Promise.all(names.filter((name) => !buffers.has(name)).map(async (name) => {
    const stem = mixer.stems.find((item) => item.name === name);
    buffers.set(name, await mixer.context.decodeAudioData(await getBytes(assetUrl(stem.url))));
  }));
}

/** The gain a stem is heard at: 0 when muted or when another stem is soloed, else its volume. */
function gainOf(mixer, name) {
  const control = mixer.controls.get(name);
  const soloing = [...mixer.controls.values()].some((item) => item.solo);
  return control.mute || (soloing && !control.solo) ? 0 : control.volume;
}

function applyGains(mixer) {
  for (const voice of mixer.voices) voice.gain.gain.setTargetAtTime(gainOf(mixer, voice.name), mixer.context.currentTime, 0.01);
}

/** Start the named stems together, sample-aligned on one AudioContext clock. */
async function play(mixer, names) {
  const { source: shown } = mixer;
  await decode(mixer, names);
  await mixer.context.resume();
  if (mixer.source !== shown) return;
  stop(mixer);
  emit("audio:playing", { source: SOURCE });
  const { context } = mixer;
  const at = context.currentTime + START_DELAY_S;
  mixer.voices = names.map((name) => {
    const source = context.createBufferSource();
    const gain = context.createGain();
    source.buffer = mixer.buffers.get(name);
    gain.gain.value = names.length === 1 ? mixer.controls.get(name).volume : gainOf(mixer, name);
    source.connect(gain).connect(context.destination);
    source.start(at);
    return { name, source, gain };
  });
  const longest = mixer.voices.reduce((a, b) => (b.source.buffer.duration > a.source.buffer.duration ? b : a));
  longest.source.addEventListener("ended", () => {
    if (mixer.voices.includes(longest)) stop(mixer);
  });
  showPlaying(mixer);
}

function stop(mixer) {
  for (const voice of mixer.voices) {
    voice.source.stop();
    voice.source.disconnect();
  }
  mixer.voices = [];
  showPlaying(mixer);
}

function showPlaying(mixer) {
  const playing = new Set(mixer.voices.map((voice) => voice.name));
  mixer.toggle.dataset.state = playing.size > 1 ? "playing" : "stopped";
  translate(mixer.toggle, playing.size > 1 ? "stems.stop" : "stems.play_all");
  for (const button of $$("[data-action=stem-play]", mixer.list)) {
    const alone = playing.size === 1 && playing.has(button.closest("[data-role=stem]").dataset.stem);
    button.setAttribute("aria-pressed", String(alone));
  }
}

// ---- downloads (built by the server) ------------------------------------------------------------

function baseName(mixer) {
  return mixer.source?.kind === "track" ? mixer.source.name : stemOf(mixer.source?.name ?? "stems");
}

/** A stem route of the shown set: `/stems_<what>/<track>` or `/stems_any_<what>/<id>`. */
function routeOf(mixer, what) {
  const { kind, name, id } = mixer.source;
  return kind === "track" ? `/stems_${what}/${encodeURIComponent(name)}` : `/stems_any_${what}/${encodeURIComponent(id)}`;
}

/** The mixdown request for the stems named: each at the gain the user hears (see gainOf) and its mute. */
function mixBody(mixer, names) {
  return {
    stems: Object.fromEntries(names.map((name) => [name, { gain: gainOf(mixer, name), mute: mixer.controls.get(name).mute }])),
  };
}

async function downloadMix(mixer, names) {
  if (!names.length) {
    setStatus(mixer, "stems.none_selected", undefined, "error");
    return;
  }
  const body = mixBody(mixer, names);
  const heard = names.filter((name) => !body.stems[name].mute && body.stems[name].gain > 0);
  if (!heard.length) {
    setStatus(mixer, "stems.all_silent", undefined, "error");
    return;
  }
  setStatus(mixer, "stems.mixing");
  await fetchAndSave(mixer, () => postJsonForBlob(routeOf(mixer, "mix"), body),
    `${baseName(mixer)}_mix_${names.join("+")}_${fileStamp()}.wav`, { key: "stems.mixed", vars: { names: heard.join(", ") } });
}

async function downloadZip(mixer, names) {
  if (!names.length) {
    setStatus(mixer, "stems.none_selected", undefined, "error");
    return;
  }
  const all = names.length === mixer.stems.length;
  const query = all ? "" : `?stems=${names.map(encodeURIComponent).join(",")}`;
  setStatus(mixer, "stems.zipping");
  await fetchAndSave(mixer, () => getBlob(`${routeOf(mixer, "zip")}${query}`),
    `${baseName(mixer)}_${all ? "stems" : names.join("+")}.zip`, { key: "stems.zipped", vars: { count: names.length } });
}

/** Fetch the file the server builds, save it as `name` and report `done`; failures go to the status line. */
async function fetchAndSave(mixer, fetchFile, name, done) {
  const { source } = mixer;
  let blob;
  try {
    blob = await fetchFile();
  } catch (error) {
    if (mixer.source === source) showError(mixer, error);
    return;
  }
  saveBlob(blob, name);
  if (mixer.source === source) setStatus(mixer, done.key, done.vars, "success");
}

/** A failed request or action, said in the user's language: unreachable, gone, refused (with why), other. */
function showError(mixer, error) {
  if (!(error instanceof HttpError)) setStatus(mixer, "stems.error", { message: errorOf(error) }, "error");
  else if (error.status === 0) setStatus(mixer, "stems.error_network", undefined, "error");
  else if (error.status === 404) setStatus(mixer, "stems.error_missing", undefined, "error");
  else if (error.status < 500) setStatus(mixer, "stems.error_refused", { message: errorOf(error) }, "error");
  else setStatus(mixer, "stems.error_server", { status: error.status, message: errorOf(error) }, "error");
}
