/**
 * The generation settings form: model, the slider + number pairs (ranges from the server's boot
 * config, so the form and the server share one range), Top K / Top P exclusivity, seed auto / manual /
 * roll (auto is a preference kept apart from the last seed, so a reload keeps Auto-seed on), artist,
 * format, sample rate, loudness target, switches (and "Listen while generating", a preference too); persisted in
 * localStorage; "Restore last run", and a request restored from a dropped file (`settings:apply`). The Last seed
 * shown is that of this tab's last finished track (`job:finished`), never a failed job's. A seed out of range is
 * corrected with a warning, as the range boxes are. `getSettings()` turns the form into the `submit_sliders` fields.
 * @module settings
 */
import { emit, on } from "./bus.js";
import { $, $$, delegate, el } from "./dom.js";
import { getJson } from "./http.js";
import { errorOf, hasKey, t, translate } from "./i18n.js";
import { modelOptions, showModelStatus } from "./settings-models.js";
import { initWorkflow, workflowFields } from "./settings-workflow.js";
import { load, save } from "./store.js";

const STORE_KEY = "settings.v1";
const RANGE_NAMES = ["duration", "top_k", "top_p", "temperature", "cfg_coef"];
const SAMPLING = ["top_k", "top_p"];
const FLOAT_STEP = 0.01;
const SEED_MAX = 2 ** 32 - 1;
const ROLL_MAX = 100_000_000;
const AUTO_SEED = -1;
const DEFAULT_LOUDNESS = "-14";

let form = null;
let models = [];
let uploads = { audioPrompt: null, continuation: null, append: false };

/**
 * Build the choices from the boot config and fill the form: a returning browser gets the values it saved,
 * a new browser the server's last run (settings/last_run.json: it starts where the user left off). Emits `settings:changed {model, melody}`.
 * @param {ParentNode} root the page
 * @param {{models: object[], ranges: object, formats: string[], sample_rates: string[], stem_targets: string[],
 *   loudness_targets: string[], last_run: object|null}} boot
 * @returns {void}
 */
export function initSettings(root, boot) {
  form = $("[data-role=settings]", root);
  models = boot.models;
  initWorkflow(form);
  fillChoices(boot);
  configureRanges(boot.ranges);
  const saved = load(STORE_KEY, null);
  applyValues({ ...defaults(boot), ...(saved ?? fromRequest(boot.last_run?.request)) });
  if (boot.last_run?.last_seed !== undefined) showLastSeed(boot.last_run.last_seed);
  delegate(form, "input", "[data-role=slider], [data-role=number]", (event, input) => onRangeInput(input, event.type));
  delegate(form, "change", "[data-role=number]", (event, input) => onRangeInput(input, event.type));
  delegate(form, "change", "[data-setting]", (event, input) => onSettingChange(input));
  delegate(form, "click", "[data-action]", (event, button) => onAction(button.dataset.action));
  on("upload:changed", (state) => { uploads = state; });
  on("job:finished", ({ state, seed }) => {
    if (state === "done") showLastSeed(seed);
  });
  on("settings:field-error", ({ field }) => markInvalid(field));
  on("i18n:changed", () => { // sizes are written the language's way
    const chosen = control("model").value;
    control("model").replaceChildren(...modelOptions(models));
    control("model").value = chosen;
    showModelStatus($("[data-role=model-status]", form), modelInfo(chosen));
  });
  on("settings:apply", ({ request, seed }) => {
    applyValues({ ...readValues(), ...fromRequest(request) });
    persist();
    showLastSeed(seed);
  });
}

/**
 * The form as `submit_sliders` fields (everything but the prompt).
 * @returns {{model: string, values: {duration: number, top_k: number, top_p: number, temperature: number, cfg_coef: number, seed: number},
 *   format: string, sample_rate: string, loudness: string, keep_mono: boolean, auto_tune: boolean, mbd: boolean, preview: boolean,
 *   stem_split: string, artist: string, audio_prompt: string|null, appendContinuation: boolean, continuation: string|null,
 *   prompt_list: boolean, variations: number, bpm: number|null, key: string, bars: number|null, loop: object|null,
 *   segments: object[], melody_track: string|null, continue_track: string|null}}
 */
export function getSettings() {
  const v = readValues();
  const append = Boolean(uploads.append && uploads.continuation);
  return {
    model: v.model,
    values: {
      duration: v.duration, top_k: v.top_k, top_p: v.sampling === "top_p" ? v.top_p : 0,
      temperature: v.temperature, cfg_coef: v.cfg_coef, seed: v.seed_auto ? AUTO_SEED : v.seed,
    },
    format: v.format,
    sample_rate: v.sample_rate,
    loudness: v.loudness,
    keep_mono: !v.stereo,
    auto_tune: v.auto_tune,
    mbd: v.mbd,
    preview: v.preview,
    stem_split: v.stem_split,
    artist: v.artist_enabled ? v.artist.trim() : "",
    audio_prompt: modelInfo(v.model)?.melody ? uploads.audioPrompt : null,
    appendContinuation: append,
    continuation: append ? uploads.continuation : null,
    prompt_list: v.prompt_list,
    ...workflowFields(v, Boolean(modelInfo(v.model)?.melody)),
  };
}

// ---- building ---------------------------------------------------------------------------------

function control(name) {
  return $(`[data-setting="${name}"]`, form);
}

function pair(name) {
  return { slider: $(`[data-role=slider][data-name="${name}"]`, form), number: $(`[data-role=number][data-name="${name}"]`, form) };
}

function modelInfo(key) {
  return models.find((model) => model.key === key);
}

function option(value, key, vars, text) {
  const node = el("option", { attrs: { value } });
  return key && hasKey(key) ? translate(node, key, vars) : Object.assign(node, { textContent: text ?? value });
}

function fillChoices(boot) {
  control("model").replaceChildren(...modelOptions(boot.models));
  control("format").replaceChildren(...boot.formats.map((format) => option(format, `format.${format}`)));
  control("sample_rate").replaceChildren(...boot.sample_rates.map((rate) => option(rate, `sample_rate.${rate}`, null, `${Number(rate) / 1000} kHz`)));
  control("stem_split").replaceChildren(...boot.stem_targets.map((target) => option(target, `stem_split.${target || "none"}`)));
  control("loudness").replaceChildren(...boot.loudness_targets.map((target) => option(target, `loudness.${target}`, null, target)));
  control("seed").max = String(SEED_MAX);
}

function configureRanges(ranges) {
  for (const name of RANGE_NAMES) {
    const range = ranges[name];
    const step = range.integer ? "1" : String(FLOAT_STEP);
    for (const input of Object.values(pair(name))) Object.assign(input, { min: String(range.min), max: String(range.max), step });
  }
}

function defaults(boot) {
  const values = Object.fromEntries(RANGE_NAMES.map((name) => [name, boot.ranges[name].default]));
  const model = modelInfo("small") ?? boot.models[0];
  return {
    ...values, model: model.key, sampling: values.top_p > 0 ? "top_p" : "top_k", seed_auto: true, seed: 0,
    format: boot.formats[0], sample_rate: boot.sample_rates[0], stereo: true, auto_tune: true, mbd: false,
    loudness: boot.loudness_targets.includes(DEFAULT_LOUDNESS) ? DEFAULT_LOUDNESS : boot.loudness_targets[0],
    preview: true, stem_split: "", artist_enabled: false, artist: "",
    variations: 1, bpm: "", key: "", bars: "", loop: false, beats_per_bar: 4, prompt_list: false,
  };
}

/** Form values from a stored request (last_run.json's `request`: the user's own values, never auto-tuned ones). */
function fromRequest(request) {
  if (!request || typeof request !== "object") return {};
  const values = {
    model: request.model, duration: request.duration, top_k: request.top_k, top_p: request.top_p,
    temperature: request.temperature, cfg_coef: request.cfg_coef, format: request.format,
    sample_rate: request.sample_rate === undefined ? undefined : String(request.sample_rate),
    stereo: request.keep_mono === undefined ? undefined : !request.keep_mono, auto_tune: request.auto_tune, mbd: request.mbd,
    stem_split: request.stem_split, artist: request.artist, artist_enabled: request.artist ? true : undefined,
    loudness: request.loudness,
  };
  Object.assign(values, workflowValues(request));
  if (typeof request.top_p === "number") values.sampling = request.top_p > 0 ? "top_p" : "top_k";
  if (typeof request.seed === "number") {
    values.seed_auto = request.seed === AUTO_SEED;
    if (request.seed >= 0) values.seed = request.seed;
  }
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined && value !== null));
}

/** The workflow fields of a stored request as form values (a loop gives its bars, tempo and metre back). */
function workflowValues(request) {
  const loop = request.loop && typeof request.loop === "object" ? request.loop : null;
  return {
    variations: request.variations, key: request.key, loop: loop ? true : undefined,
    bpm: loop?.bpm ?? request.bpm, bars: loop?.bars ?? request.bars, beats_per_bar: loop?.beats_per_bar,
  };
}

// ---- reading and writing the form -------------------------------------------------------------

function readValues() {
  const values = Object.fromEntries(RANGE_NAMES.map((name) => [name, Number(pair(name).number.value)]));
  for (const input of $$("[data-setting]", form)) {
    const name = input.dataset.setting;
    values[name] = input.type === "checkbox" ? input.checked : input.value;
  }
  values.seed = clampSeed(values.seed);
  values.sampling = form.dataset.sampling;
  return values;
}

function applyValues(values) {
  for (const name of RANGE_NAMES) setRange(name, values[name]);
  for (const input of $$("[data-setting]", form)) {
    const value = values[input.dataset.setting];
    if (value === undefined) continue;
    if (input.type === "checkbox") input.checked = Boolean(value);
    else if (input.tagName !== "SELECT" || [...input.options].some((item) => item.value === String(value))) input.value = String(value);
  }
  setSampling(SAMPLING.includes(values.sampling) ? values.sampling : "top_p");
  syncDependents();
  announceModel();
}

/** Put a value into a slider pair, clamped and rounded to its step; returns false when it was out of range. */
function setRange(name, raw) {
  const { slider, number } = pair(name);
  const min = Number(slider.min);
  const max = Number(slider.max);
  const wanted = raw === "" || raw === null || raw === undefined ? NaN : Number(raw);
  const value = Number.isFinite(wanted) ? Math.min(Math.max(wanted, min), max) : min;
  const text = slider.step === "1" ? String(Math.round(value)) : String(Number((Math.round(value / FLOAT_STEP) * FLOAT_STEP).toFixed(2)));
  slider.value = text;
  number.value = text;
  return value === wanted;
}

function clampSeed(raw) {
  const value = Math.trunc(Number(raw));
  return Number.isFinite(value) ? Math.min(Math.max(value, 0), SEED_MAX) : 0;
}

/** A seed typed out of range or not whole (−7, 99999999999, 12.9) is corrected, and the user told, as the range boxes do. */
function checkSeed(input) {
  const wanted = Number(input.value);
  const used = clampSeed(input.value);
  if (input.value !== "" && Number.isInteger(wanted) && wanted === used) return;
  input.value = String(used);
  emit("toast:show", { key: "toast.seed_range", vars: { max: SEED_MAX, used } });
}

function persist() {
  save(STORE_KEY, readValues());
}

// ---- behaviour --------------------------------------------------------------------------------

/** Slider and number box stay in sync; the number box is clamped into the server's range on change. */
function onRangeInput(input, type) {
  const name = input.dataset.name;
  const { slider, number } = pair(name);
  if (input === slider) number.value = slider.value;
  else if (type === "change") {
    if (!setRange(name, number.value)) emit("toast:show", { key: "toast.clamped", vars: { field: t(`field.${name}`), min: number.min, max: number.max } });
  } else if (number.value !== "") slider.value = number.value;
  input.removeAttribute("aria-invalid");
  if (SAMPLING.includes(name)) activateSampling(name);
  persist();
}

/** Changing Top K or Top P makes it the active one and the other one inactive; Top P at 0 means Top K. */
function activateSampling(name) {
  const wanted = name === "top_p" && Number(pair("top_p").number.value) === 0 ? "top_k" : name;
  setSampling(wanted);
}

function setSampling(active) {
  form.dataset.sampling = active;
  for (const name of SAMPLING) {
    const row = $(`[data-role=range][data-name="${name}"]`, form);
    row.dataset.inactive = String(name !== active);
  }
  translate($("[data-role=sampling-hint]", form), active === "top_p" ? "hint.top_p_active" : "hint.top_k_active");
}

function onSettingChange(input) {
  input.removeAttribute("aria-invalid");
  if (input.dataset.setting === "seed") checkSeed(input);
  syncDependents();
  if (input.dataset.setting === "model") announceModel();
  persist();
}

function syncDependents() {
  control("seed").disabled = control("seed_auto").checked;
  control("artist").disabled = !control("artist_enabled").checked;
}

function announceModel() {
  const key = control("model").value;
  showModelStatus($("[data-role=model-status]", form), modelInfo(key));
  emit("settings:changed", { model: key, melody: Boolean(modelInfo(key)?.melody) });
}

function onAction(action) {
  if (action === "roll-seed") useSeed(Math.floor(Math.random() * ROLL_MAX));
  else if (action === "use-last-seed") useSeed(Number($("[data-role=last-seed-value]", form).value));
  else if (action === "restore-last-run") restoreLastRun();
}

function useSeed(seed) {
  control("seed").value = String(clampSeed(seed));
  control("seed_auto").checked = false;
  syncDependents();
  persist();
}

function showLastSeed(seed) {
  if (typeof seed !== "number") return;
  $("[data-role=last-seed-value]", form).value = String(seed);
  $("[data-role=last-seed]", form).hidden = false;
}

function markInvalid(field) {
  const name = field?.startsWith("loop.") ? field.slice("loop.".length) : field; // the loop's bpm and bars are the form's
  const target = RANGE_NAMES.includes(name) ? pair(name).number : control(name);
  target?.setAttribute("aria-invalid", "true");
}

async function restoreLastRun() {
  let run;
  try {
    run = await getJson("/api/last_run");
  } catch (error) {
    emit("toast:show", { key: "toast.request_failed", vars: { message: errorOf(error) }, kind: "error" });
    return;
  }
  if (!run?.request) {
    emit("toast:show", { key: "toast.no_last_run" });
    return;
  }
  applyValues({ ...readValues(), ...fromRequest(run.request) });
  persist();
  showLastSeed(run.last_seed);
  emit("composer:set-prompt", { prompt: run.prompt ?? run.request.prompt ?? "" });
  emit("toast:show", { key: "toast.restored", kind: "success" });
}
