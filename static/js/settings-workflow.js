/**
 * The workflow part of the settings form: takes, BPM / key / bars, loop mode, the prompt list switch, tracks
 * referenced from a card (melody or continuation, no upload) and the song-structure timeline of up to 10
 * segments. `workflowFields(values)` turns them into the `submit_sliders` fields (README, "Protocol").
 * Listens to `workflow:track-ref {ref, name}` (a card's "Use as melody" / "Send to continuation").
 * @module settings-workflow
 */
import { emit, on } from "./bus.js";
import { $, $$, delegate, el } from "./dom.js";
import { t, translate } from "./i18n.js";

const NOTES = ["C", "C#", "Db", "D", "D#", "Eb", "E", "F", "F#", "Gb", "G", "G#", "Ab", "A", "A#", "Bb", "B"];
const SCALES = ["major", "minor"];
const MAX_SEGMENTS = 10;
const MAX_TOTAL_S = 300;
const DEFAULT_SEGMENT_S = 10;

const refs = { melody_track: null, continue_track: null };
let box = null;

/**
 * Wire the workflow fieldset of the settings form.
 * @param {ParentNode} form the settings form
 * @returns {void}
 */
export function initWorkflow(form) {
  box = $("[data-role=workflow]", form);
  const key = $("[data-setting=key]", box);
  key.replaceChildren(el("option", { attrs: { value: "" }, text: "—" }),
    ...SCALES.flatMap((scale) => NOTES.map((note) => el("option", { attrs: { value: `${note} ${scale}` }, text: `${note} ${scale}` }))));
  delegate(box, "click", "[data-action=segment-add]", () => addSegment());
  delegate(box, "click", "[data-action=segment-remove]", (event, button) => {
    button.closest("[data-role=segment]").remove();
    showTotal();
  });
  delegate(box, "input", "[data-role=segment-seconds]", () => showTotal());
  delegate(box, "click", "[data-action=clear-track-ref]", (event, button) => setRef(button.closest("[data-ref]").dataset.ref, null));
  on("workflow:track-ref", ({ ref, name }) => setRef(ref, name));
  on("i18n:changed", () => {
    showRefs();
    showTotal();
  });
  showTotal();
}

/**
 * The workflow fields of a request, from the form's values (those with `data-setting`) and this part's state.
 * @param {Object<string, unknown>} values the form's values
 * @param {boolean} melody whether the chosen model takes a melody
 * @returns {object}
 */
export function workflowFields(values, melody) {
  const whole = (raw) => (raw === "" || raw === undefined || raw === null ? null : Number(raw));
  const bpm = whole(values.bpm);
  const bars = whole(values.bars);
  // A loop missing its bars or tempo is still sent: the server names the missing field.
  const loop = values.loop ? { bars, bpm, beats_per_bar: whole(values.beats_per_bar) ?? 4 } : null;
  return {
    variations: whole(values.variations) ?? 1,
    bpm,
    key: values.key ?? "",
    bars: loop ? null : bars,
    loop,
    segments: segments(),
    melody_track: melody ? refs.melody_track : null,
    continue_track: refs.continue_track,
  };
}

function segments() {
  return $$("[data-role=segment]", box).map((row) => ({
    prompt: $("[data-role=segment-prompt]", row).value.trim(),
    seconds: Number($("[data-role=segment-seconds]", row).value),
  }));
}

function addSegment() {
  const list = $("[data-role=segments]", box);
  if (list.children.length >= MAX_SEGMENTS) {
    emit("toast:show", { key: "timeline.full", vars: { max: MAX_SEGMENTS }, kind: "error" });
    return;
  }
  const index = list.children.length + 1;
  const prompt = el("input", { attrs: { type: "text", "aria-label": t("timeline.prompt", { index }) }, data: { role: "segment-prompt" } });
  const seconds = el("input", {
    attrs: { type: "number", min: "1", max: String(MAX_TOTAL_S), step: "1", value: String(DEFAULT_SEGMENT_S), "aria-label": t("timeline.seconds", { index }) },
    data: { role: "segment-seconds" },
  });
  const remove = translate(el("button", { className: "small", attrs: { type: "button" }, data: { action: "segment-remove" } }), "action.remove");
  list.append(el("li", { className: "segment", data: { role: "segment" } }, [prompt, seconds, remove]));
  prompt.focus();
  showTotal();
}

function showTotal() {
  const total = segments().reduce((sum, segment) => sum + (Number.isFinite(segment.seconds) ? segment.seconds : 0), 0);
  const node = $("[data-role=timeline-total]", box);
  node.hidden = total === 0;
  translate(node, "timeline.total", { total, max: MAX_TOTAL_S });
  node.dataset.kind = total > MAX_TOTAL_S ? "error" : "";
}

function setRef(ref, name) {
  refs[ref] = name;
  showRefs();
  if (name) emit("toast:show", { key: `workflow.${ref}_set`, vars: { name }, kind: "success" });
}

function showRefs() {
  for (const node of $$("[data-role=track-ref]", box)) {
    const name = refs[node.dataset.ref];
    node.hidden = !name;
    if (name) translate($("[data-role=track-ref-text]", node), `workflow.${node.dataset.ref}`, { name });
  }
}
