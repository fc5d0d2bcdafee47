/**
 * The model choice says which models are on this machine (the boot config's `cached`) and their download size
 * (`size_bytes`, an estimate marked ≈ when `size_source` is `estimate`): in each option, and in a line under
 * the list for the chosen one.
 * @module settings-models
 */
import { el } from "./dom.js";
import { formatBytes, t, translate } from "./i18n.js";

/**
 * @typedef {object} ModelChoice
 * @property {string} key
 * @property {boolean} [melody]
 * @property {boolean} [cached] it loads without a download
 * @property {number|null} [size_bytes]
 * @property {string} [size_source] `cache`, `local`, `estimate` or `unknown`
 */

/** The model's size as text (≈ for an estimate), or "" when unknown. */
function sizeText(model) {
  if (typeof model.size_bytes !== "number" || model.size_bytes <= 0) return "";
  const size = formatBytes(model.size_bytes);
  return model.size_source === "estimate" ? t("model.estimate", { size }) : size;
}

/**
 * One `<option>` per model: its name (♪ for melody models), whether it is here, its size.
 * @param {ModelChoice[]} models
 * @returns {any[]}
 */
export function modelOptions(models) {
  return models.map((model) => {
    const size = sizeText(model);
    const name = model.melody ? `${model.key} ♪` : model.key;
    const key = `model.${model.cached ? "cached" : "download"}${size ? "" : "_unsized"}`;
    return translate(el("option", { attrs: { value: model.key }, data: { cached: Boolean(model.cached) } }), key, { name, size });
  });
}

/**
 * Say under the list whether the chosen model is here, or what its first use downloads.
 * @param {HTMLElement} node the status line
 * @param {ModelChoice|undefined} model
 * @returns {void}
 */
export function showModelStatus(node, model) {
  if (!model) return;
  const size = sizeText(model);
  node.dataset.cached = String(Boolean(model.cached));
  if (model.cached) translate(node, "model.status_cached");
  else translate(node, size ? "model.status_download" : "model.status_download_unsized", { size });
}
