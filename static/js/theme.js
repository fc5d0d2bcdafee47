/**
 * The light and dark themes: the page follows the system's `prefers-color-scheme` until the user presses the
 * theme button, whose choice is remembered (and followed by other tabs). The theme is `html[data-theme]`;
 * the stylesheet holds both palettes. Emits `theme:changed {theme}` (the waveform is drawn in its colours).
 * @module theme
 */
import { emit } from "./bus.js";
import { $ } from "./dom.js";
import { load, save, storageKey } from "./store.js";

const STORE_KEY = "theme";
const THEMES = ["light", "dark"];

/**
 * Apply the theme and wire the `[data-action=toggle-theme]` button (pressed = light).
 * @param {ParentNode} root the page
 * @returns {void}
 */
export function initTheme(root) {
  const button = $("[data-action=toggle-theme]", root);
  const system = window.matchMedia("(prefers-color-scheme: light)");
  const apply = () => {
    const chosen = load(STORE_KEY, null);
    const theme = THEMES.includes(chosen) ? chosen : system.matches ? "light" : "dark";
    document.documentElement.dataset.theme = theme;
    button.setAttribute("aria-pressed", String(theme === "light"));
    emit("theme:changed", { theme });
  };
  button.addEventListener("click", () => {
    save(STORE_KEY, document.documentElement.dataset.theme === "light" ? "dark" : "light");
    apply();
  });
  system.addEventListener("change", apply);
  window.addEventListener("storage", (event) => {
    if (event.key === storageKey(STORE_KEY)) apply();
  });
  apply();
}
