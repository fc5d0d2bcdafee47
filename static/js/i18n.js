/**
 * RU / EN strings: `t(key, vars)`, `[data-i18n]` text and `[data-i18n-attr]` attributes, and the
 * persisted language selector. Dynamic nodes keep their key in `data-i18n` (and their variables in
 * `data-i18n-vars`), so switching the language re-translates everything already on screen.
 * @module i18n
 */
import { emit } from "./bus.js";
import { $, $$ } from "./dom.js";
import { getJson } from "./http.js";
import { load, save } from "./store.js";

/** Languages offered, the first one is the fallback. */
const LANGUAGES = ["en", "ru"];
const STORE_KEY = "lang";

const dictionaries = {};
let current = LANGUAGES[0];

/**
 * Load the dictionaries, pick the language (saved choice, else the browser's) and translate the
 * whole document (the title too). Wires the `[data-role=language]` selector found in `root`.
 * @param {ParentNode} root the page
 * @returns {Promise<void>}
 */
export async function initI18n(root) {
  const loaded = await Promise.all(LANGUAGES.map((lang) => getJson(new URL(`../locales/${lang}.json`, import.meta.url))));
  LANGUAGES.forEach((lang, index) => { dictionaries[lang] = loaded[index]; });
  const preferred = load(STORE_KEY, null) ?? (navigator.language ?? "").slice(0, 2);
  current = LANGUAGES.includes(preferred) ? preferred : LANGUAGES[0];
  document.documentElement.lang = current;
  const select = $("[data-role=language]", root);
  select.value = current;
  select.addEventListener("change", () => setLanguage(select.value));
  applyTranslations(document);
}

/**
 * Switch the language, remember it and re-translate the page. Emits `i18n:changed {lang}`.
 * @param {string} lang one of LANGUAGES
 * @returns {void}
 */
function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) return;
  current = lang;
  save(STORE_KEY, lang);
  document.documentElement.lang = lang;
  applyTranslations(document);
  emit("i18n:changed", { lang });
}

/**
 * The current language.
 * @returns {string}
 */
export function language() {
  return current;
}

/**
 * Whether a key exists (in the current language or the fallback).
 * @param {string} key
 * @returns {boolean}
 */
export function hasKey(key) {
  return key in (dictionaries[current] ?? {}) || key in (dictionaries[LANGUAGES[0]] ?? {});
}

/**
 * Translate a key, filling `{name}` placeholders from `vars`. A missing key is reported with
 * console.warn and shown as the key itself.
 * @param {string} key dictionary key
 * @param {Object<string, unknown>} [vars] placeholder values (inserted as text)
 * @returns {string}
 */
export function t(key, vars) {
  const text = dictionaries[current]?.[key] ?? dictionaries[LANGUAGES[0]]?.[key];
  if (text === undefined) {
    console.warn(`i18n: missing key "${key}"`);
    return key;
  }
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/**
 * Set a node's text from a key and remember the key, so a language switch re-translates it.
 * @template {HTMLElement} N
 * @param {N} node target element (its children are replaced by the text)
 * @param {string} key dictionary key
 * @param {Object<string, unknown>} [vars] placeholder values
 * @returns {N} the node
 */
export function translate(node, key, vars) {
  node.dataset.i18n = key;
  if (vars) node.dataset.i18nVars = JSON.stringify(vars);
  else delete node.dataset.i18nVars;
  node.textContent = t(key, vars);
  return node;
}

/**
 * Empty a node set by translate(), so a language switch leaves it empty.
 * @param {HTMLElement} node
 * @returns {void}
 */
export function clearText(node) {
  delete node.dataset.i18n;
  delete node.dataset.i18nVars;
  node.textContent = "";
}

/**
 * Translate every `[data-i18n]` text and `[data-i18n-attr="attr:key;attr:key"]` attribute in root.
 * @param {ParentNode} root
 * @returns {void}
 */
function applyTranslations(root) {
  for (const node of $$("[data-i18n]", root)) {
    node.textContent = t(node.dataset.i18n, node.dataset.i18nVars ? JSON.parse(node.dataset.i18nVars) : undefined);
  }
  for (const node of $$("[data-i18n-attr]", root)) {
    for (const pair of node.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((part) => part.trim());
      node.setAttribute(attr, t(key));
    }
  }
}
