/**
 * The prompt box: Enter / Ctrl+Enter submit (one listener, so a key press submits once), Shift+Enter
 * adds a line, an empty prompt or one over the server's limit (the boot config's `max_prompt_chars`, counted
 * as the server counts, shown by a counter) is refused here, a dropped audio file is offered to restore or
 * becomes an upload, and Submit / Cancel follow the chat's double-submit guard (`composer:busy`). The box
 * empties when a job is accepted and gets its prompt back when that job fails, is cancelled or is lost.
 * Emits `job:submit {text, payload}` (or `job:submit-list {items}`: one prompt per line) and `composer:cancel`.
 * @module composer
 */
import { emit, on } from "./bus.js";
import { $ } from "./dom.js";
import { translate } from "./i18n.js";
import { getSettings } from "./settings.js";

const AUDIO_FILE = /\.(wav|flac|mp3|ogg)$/i;

/**
 * Wire the prompt form.
 * @param {ParentNode} root the page
 * @param {{max_prompt_chars: number}} boot
 * @returns {void}
 */
export function initComposer(root, boot) {
  const composer = {
    max: boot.max_prompt_chars,
    count: $("[data-role=prompt-count]", root),
    form: $("[data-role=composer]", root),
    prompt: $("[data-role=prompt]", root),
    submit: $("[data-role=submit]", root),
    cancel: $("[data-action=cancel-job]", root),
    hint: $("[data-role=composer-hint]", root),
    busy: false,
  };
  composer.form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(composer);
  });
  composer.cancel.addEventListener("click", () => emit("composer:cancel"));
  composer.prompt.addEventListener("input", () => {
    showHint(composer, "composer.hint");
    showCount(composer);
  });
  bindKeyboard(composer);
  bindDrop(composer);
  on("composer:busy", ({ busy }) => {
    composer.busy = busy;
    composer.submit.disabled = busy;
    composer.cancel.hidden = !busy;
    composer.form.dataset.busy = String(busy);
  });
  on("job:accepted", ({ rerun }) => {
    if (!rerun) setPrompt(composer, "");
  });
  on("job:finished", ({ state, text, rerun }) => {
    if (state !== "done" && !rerun && text && !composer.prompt.value.trim()) setPrompt(composer, text);
  });
  on("composer:set-prompt", ({ prompt }) => {
    setPrompt(composer, prompt ?? "");
    composer.prompt.focus();
  });
  on("i18n:changed", () => showCount(composer));
  showCount(composer);
}

function setPrompt(composer, text) {
  composer.prompt.value = text;
  showCount(composer);
}

/** Characters as the server counts them (code points), after the trim the submit does. */
function length(text) {
  return [...text.trim()].length;
}

function showCount(composer) {
  const count = length(composer.prompt.value);
  translate(composer.count, "composer.count", { count, max: composer.max });
  composer.count.dataset.kind = count > composer.max ? "error" : "";
}

/** Submit the prompt; with "One prompt per line" each non-empty line is a job of its own, run in order. */
function send(composer) {
  if (composer.busy) return;
  const { prompt_list: list, ...settings } = getSettings();
  const prompt = composer.prompt.value.trim();
  const prompts = list ? prompt.split("\n").map((line) => line.trim()).filter(Boolean) : [prompt];
  if (!prompt) {
    showHint(composer, "composer.empty", "error");
    composer.prompt.focus();
    return;
  }
  const longest = Math.max(...prompts.map(length));
  if (longest > composer.max) {
    translate(composer.hint, "composer.too_long", { count: longest, max: composer.max });
    composer.hint.dataset.kind = "error";
    composer.prompt.setAttribute("aria-invalid", "");
    composer.prompt.focus();
    return;
  }
  showHint(composer, "composer.hint");
  const items = prompts.map((text) => ({ text, payload: { ...settings, prompt: text } }));
  if (items.length > 1) emit("job:submit-list", { items });
  else emit("job:submit", items[0]);
}

/** Enter (without Shift) in the prompt, or Ctrl/Cmd+Enter anywhere but a dialog: one listener for both. */
function bindKeyboard(composer) {
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.isComposing || event.target.closest?.("dialog")) return;
    const withModifier = event.ctrlKey || event.metaKey;
    const plainInPrompt = event.target === composer.prompt && !event.shiftKey && !event.altKey;
    if (!withModifier && !plainInPrompt) return;
    event.preventDefault();
    composer.form.requestSubmit();
  });
}

/** A dropped audio file is offered to restore (`file:dropped`): one of ours gives its parameters back, any other
 * becomes an upload (audio prompt for melody models, else the continuation clip). */
function bindDrop(composer) {
  const { form } = composer;
  const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
  for (const type of ["dragenter", "dragover"]) {
    form.addEventListener(type, (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      form.dataset.drop = "active";
    });
  }
  form.addEventListener("dragleave", (event) => {
    if (!form.contains(event.relatedTarget)) form.dataset.drop = "idle";
  });
  form.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    form.dataset.drop = "idle";
    const file = [...event.dataTransfer.files].find((item) => item.type.startsWith("audio/") || AUDIO_FILE.test(item.name));
    if (file) emit("file:dropped", { file });
    else emit("toast:show", { key: "toast.not_audio", kind: "error" });
  });
}

function showHint(composer, key, kind = "") {
  translate(composer.hint, key);
  composer.hint.dataset.kind = kind;
  composer.prompt.toggleAttribute("aria-invalid", kind === "error");
}
