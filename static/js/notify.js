/**
 * Status output: the connection indicator, the version, toasts (`toast:show`) and the start-up
 * notices of the boot config (jobs interrupted by a restart, files quarantined by the recovery sweep).
 * @module notify
 */
import { on } from "./bus.js";
import { $, delegate } from "./dom.js";
import { translate } from "./i18n.js";
import { toastNode } from "./render.js";

const TOAST_MS = 6000;
const MAX_TOASTS = 4;

/**
 * Wire the indicator and the toast area, and show the boot notices.
 * @param {ParentNode} root the page
 * @param {{version: string, interrupted?: object[], recovery?: {quarantined?: object[]}}} boot
 * @returns {void}
 */
export function initNotify(root, boot) {
  const connection = $("[data-role=connection]", root);
  const toasts = $("[data-role=toasts]", root);
  $("[data-role=version]", root).textContent = `v${boot.version}`;
  on("connection:changed", ({ connected, transport }) => {
    connection.dataset.state = connected ? "connected" : "disconnected";
    connection.dataset.transport = transport;
    translate($("[data-role=connection-text]", connection), connected ? "conn.connected" : "conn.disconnected");
  });
  on("toast:show", (message) => showToast(toasts, message));
  delegate(toasts, "click", "[data-action=close-toast]", (event, button) => button.closest("[data-role=toast]").remove());
  if (boot.interrupted?.length) showToast(toasts, { key: "toast.interrupted", vars: { count: boot.interrupted.length }, kind: "error" });
  if (boot.recovery?.quarantined?.length) {
    showToast(toasts, { key: "toast.quarantined", vars: { count: boot.recovery.quarantined.length }, kind: "error" });
  }
}

function showToast(toasts, message) {
  const node = toastNode(message);
  toasts.append(node);
  while (toasts.children.length > MAX_TOASTS) toasts.firstElementChild.remove();
  setTimeout(() => node.remove(), TOAST_MS);
}
