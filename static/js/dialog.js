/**
 * The confirmation dialog (one native `<dialog>` in the page) as a Promise.
 * @module dialog
 */
import { $ } from "./dom.js";
import { translate } from "./i18n.js";

/**
 * Ask the user to confirm a destructive action. Escape or Cancel answer false.
 * @param {{title: string, text: string, vars?: Object<string, unknown>, confirm?: string}} keys
 *   dictionary keys of the title, the text and the confirm button (default `action.delete`)
 * @returns {Promise<boolean>} true when confirmed
 */
export function confirmAction({ title, text, vars, confirm = "action.delete" }) {
  const dialog = $("[data-role=confirm-dialog]");
  translate($("[data-role=confirm-title]", dialog), title, vars);
  translate($("[data-role=confirm-text]", dialog), text, vars);
  translate($("[data-role=confirm-ok]", dialog), confirm);
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}
