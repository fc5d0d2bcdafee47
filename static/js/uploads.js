/**
 * Audio uploads: the audio prompt (shown for melody models only) and the continuation clip with its
 * Append switch. Files come from the file inputs or from a drop on the prompt box (`upload:file`).
 * Publishes `upload:changed {audioPrompt, continuation, append}` with the server's upload ids.
 * @module uploads
 */
import { emit, on } from "./bus.js";
import { $, $$, assetUrl } from "./dom.js";
import { uploadFile } from "./http.js";
import { clearText, errorOf, translate } from "./i18n.js";

const ROUTES = {
  audioPrompt: { url: "/upload_melody", field: "melody" },
  continuation: { url: "/upload_continuation", field: "continuation" },
};

/**
 * Wire the upload fields. Must run before initSettings, which announces the initial model.
 * @param {ParentNode} root the page
 * @returns {void}
 */
export function initUploads(root) {
  const state = { melody: false, append: $("[data-role=append]", root), fields: {}, info: {} };
  for (const field of $$("[data-role=upload]", root)) {
    const purpose = field.dataset.purpose;
    state.fields[purpose] = field;
    state.info[purpose] = null;
    $("[data-role=upload-input]", field).addEventListener("change", (event) => {
      const file = event.target.files?.[0];
      if (file) upload(state, purpose, file);
    });
    $("[data-action=clear-upload]", field).addEventListener("click", () => clear(state, purpose));
  }
  state.append.addEventListener("change", () => publish(state));
  on("settings:changed", ({ melody }) => {
    state.melody = melody;
    state.fields.audioPrompt.hidden = !melody;
  });
  on("upload:file", ({ file }) => upload(state, state.melody ? "audioPrompt" : "continuation", file));
  on("tracks:removed", ({ all, clearAll }) => {
    if (all || clearAll) Object.keys(ROUTES).forEach((purpose) => clear(state, purpose));
  });
}

function parts(field) {
  return {
    input: $("[data-role=upload-input]", field),
    status: $("[data-role=upload-status]", field),
    preview: $("[data-role=upload-preview]", field),
    clearButton: $("[data-action=clear-upload]", field),
  };
}

async function upload(state, purpose, file) {
  const field = state.fields[purpose];
  const { status } = parts(field);
  field.dataset.state = "uploading";
  translate(status, "upload.uploading", { name: file.name });
  try {
    const info = await uploadFile(ROUTES[purpose].url, ROUTES[purpose].field, file);
    state.info[purpose] = info;
    show(field, info);
    if (purpose === "continuation") state.append.checked = true;
  } catch (error) {
    state.info[purpose] = null;
    field.dataset.state = "error";
    translate(status, "upload.failed", { name: file.name, message: errorOf(error) });
    parts(field).input.value = "";
  }
  publish(state);
}

function show(field, info) {
  const { status, preview, clearButton } = parts(field);
  field.dataset.state = "ready";
  translate(status, "upload.ready", { name: info.name, seconds: Number(info.duration).toFixed(1) });
  preview.src = assetUrl(info.filePath);
  preview.hidden = false;
  clearButton.hidden = false;
}

function clear(state, purpose) {
  const field = state.fields[purpose];
  const { input, status, preview, clearButton } = parts(field);
  state.info[purpose] = null;
  field.dataset.state = "empty";
  input.value = "";
  clearText(status);
  preview.removeAttribute("src");
  preview.hidden = true;
  clearButton.hidden = true;
  if (purpose === "continuation") state.append.checked = false;
  publish(state);
}

function publish(state) {
  state.append.disabled = !state.info.continuation;
  emit("upload:changed", {
    audioPrompt: state.info.audioPrompt?.id ?? null,
    continuation: state.info.continuation?.id ?? null,
    append: state.append.checked,
  });
}
