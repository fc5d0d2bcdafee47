/**
 * "Demucs: split any file" (Advanced): uploads a file, starts `demucs_any`, shows its progress and
 * hands the stems to the mixer (`stems:show`) without creating a track.
 * @module demucs
 */
import { emit, on } from "./bus.js";
import { $ } from "./dom.js";
import { uploadFile } from "./http.js";
import { errorOf, translate } from "./i18n.js";
import { setProgress } from "./render.js";
import { request } from "./socket.js";

/**
 * Wire the panel.
 * @param {ParentNode} root the page
 * @returns {void}
 */
export function initDemucs(root) {
  const panel = $("[data-role=demucs-any]", root);
  const view = {
    file: $("[data-role=demucs-file]", panel),
    run: $("[data-action=demucs-run]", panel),
    bar: $("[data-role=demucs-bar]", panel),
    status: $("[data-role=demucs-status]", panel),
    upload: null,
    name: "",
  };
  const mine = (payload) => Boolean(view.upload) && payload.upload === view.upload;
  view.run.addEventListener("click", () => start(view));
  on("demucs_any_progress", (payload) => {
    if (!mine(payload)) return;
    const { progress } = payload;
    view.bar.hidden = false;
    setProgress(view.bar, progress);
    translate(view.status, "demucs.separating", { percent: Math.round(progress * 100) });
  });
  on("demucs_any_done", (payload) => {
    if (!mine(payload)) return;
    const { id, display_name: displayName, stems, error } = payload;
    finish(view);
    if (error || !stems?.length) {
      translate(view.status, "demucs.failed", { message: errorOf(error) });
      return;
    }
    translate(view.status, "demucs.done", { count: stems.length });
    emit("stems:show", { id, name: displayName || view.name, stems });
  });
}

async function start(view) {
  const file = view.file.files?.[0];
  if (!file) {
    translate(view.status, "demucs.pick_file");
    return;
  }
  view.run.disabled = true;
  view.name = file.name;
  translate(view.status, "upload.uploading", { name: file.name });
  try {
    const info = await uploadFile("/upload_demucs_any", "file", file);
    view.upload = info.id;
    const ack = await request("demucs_any", { id: info.id });
    if (!ack.ok) throw errorOf(ack.error);
    view.bar.hidden = false;
    setProgress(view.bar, 0);
    translate(view.status, "stems.queued");
  } catch (error) {
    finish(view);
    translate(view.status, "demucs.failed", { message: errorOf(error) });
  }
}

function finish(view) {
  view.run.disabled = false;
  view.bar.hidden = true;
}
