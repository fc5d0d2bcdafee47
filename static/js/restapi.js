/**
 * The REST API's corner of the settings: a link to its documentation and, on a server that asks for one,
 * the bearer token a logged-in user copies into scripts (`GET /api/v1/token`).
 * @module restapi
 */
import { emit } from "./bus.js";
import { $, delegate } from "./dom.js";
import { translate } from "./i18n.js";
import { getJson } from "./http.js";

/**
 * Fill the API section from the server; a failure leaves the section saying the token is unavailable.
 * @param {ParentNode} root the page
 * @returns {Promise<void>}
 */
export async function initApiAccess(root) {
  const section = $("[data-role=api-access]", root);
  const field = $("[data-role=api-token]", section);
  delegate(section, "click", "[data-action=copy-api-token]", () => copyToken(field.value));
  let answer;
  try {
    answer = await getJson("/api/v1/token");
  } catch {
    translate($("[data-role=api-token-status]", section), "api.token_unavailable");
    return;
  }
  section.dataset.required = String(Boolean(answer.required));
  field.value = answer.token || "";
  $("[data-role=api-token-row]", section).hidden = !answer.required;
  translate($("[data-role=api-token-status]", section), answer.required ? "api.token_required" : "api.token_not_needed");
}

async function copyToken(token) {
  try {
    await navigator.clipboard.writeText(token);
    emit("toast:show", { key: "toast.api_token_copied", kind: "success" });
  } catch {
    emit("toast:show", { key: "toast.api_token_copy_failed", kind: "error" });
  }
}
