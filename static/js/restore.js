/**
 * A file of ours dropped on the page gives its parameters back. Every WAV, FLAC and MP3 made here carries its
 * request in its tags; when a dropped file holds our tag key (looked for in its first and last 512 KB, so other
 * files never reach the server for this), the server reads the tags (`POST /api/tags`) and, once the user
 * confirms, the form takes the file's prompt and settings (`settings:apply`, `composer:set-prompt`), as
 * audiocraft_plus does. Any other file, or one the user does not restore from, becomes an upload as before
 * (`upload:file`).
 * @module restore
 */
import { emit, on } from "./bus.js";
import { confirmAction } from "./dialog.js";
import { uploadFile } from "./http.js";
import { errorOf } from "./i18n.js";

/** The ID3 TXXX description and the Vorbis comment name of our record (audio/tags.py). */
const MARKERS = ["audiocraft-webui", "AUDIOCRAFT_WEBUI"];
const PROBE_BYTES = 512 * 1024;
const PROMPT_SHOWN = 120;

/**
 * Listen for dropped files (`file:dropped {file}` from the composer).
 * @returns {void}
 */
export function initRestore() {
  on("file:dropped", ({ file }) => dropped(file));
}

async function dropped(file) {
  const answer = await readTags(file);
  const request = answer?.request;
  if (request && await confirmAction({
    title: "confirm.restore_title", text: "confirm.restore_text", confirm: "action.restore",
    vars: { name: file.name, prompt: shorten(String(request.prompt ?? "")) },
  })) {
    emit("settings:apply", { request, seed: answer.seed });
    emit("composer:set-prompt", { prompt: request.prompt ?? "" });
    emit("toast:show", { key: "toast.restored_file", vars: { name: file.name }, kind: "success" });
    return;
  }
  emit("upload:file", { file });
}

/** The server's reading of the file's tags, or null when the file has none of ours (or they cannot be read). */
async function readTags(file) {
  if (!await hasOurKey(file)) return null;
  try {
    const answer = await uploadFile("/api/tags", "file", file);
    return answer?.ok ? answer : null;
  } catch (error) {
    emit("toast:show", { key: "error.line", vars: { error: errorOf(error) }, kind: "error" });
    return null;
  }
}

/** Whether our tag key is in the head (ID3v2, FLAC's comments) or the tail (a WAV's ID3 chunk) of the file. */
async function hasOurKey(file) {
  const parts = [file.slice(0, PROBE_BYTES)];
  if (file.size > PROBE_BYTES) parts.push(file.slice(Math.max(PROBE_BYTES, file.size - PROBE_BYTES)));
  try {
    const texts = await Promise.all(parts.map(async (part) => new TextDecoder("latin1").decode(await part.arrayBuffer())));
    return texts.some((text) => MARKERS.some((marker) => text.includes(marker)));
  } catch {
    return false;
  }
}

function shorten(text) {
  return text.length > PROMPT_SHOWN ? `${text.slice(0, PROMPT_SHOWN - 1)}…` : text;
}
