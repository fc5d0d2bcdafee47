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
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? varText(vars[name]) : whole));
}

/**
 * A size in bytes as the page's language writes it: `1.2 GB`, `236 MB` (decimal units, as download sizes are given).
 * @param {number} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  const value = Number(bytes) || 0;
  const [unit, scale] = value >= 1e9 ? ["unit.gb", 1e9] : ["unit.mb", 1e6];
  const digits = value >= 1e9 || value < 1e7 ? 1 : 0;
  return t(unit, { value: (value / scale).toLocaleString(current, { minimumFractionDigits: digits, maximumFractionDigits: digits }) });
}

/** A placeholder's value as text; an error object (`{type, message}`) is said in the current language. */
function varText(value) {
  return value && typeof value === "object" && typeof value.type === "string" ? errorText(value) : String(value);
}

/**
 * An error in the page's language: the text of its code (`error.<type>`; `invalid_request` names the field)
 * when the dictionary has one, else the server's own message. Error objects may also be given to t() and
 * translate() as placeholder values: they are said this way, and again after a language switch.
 * @param {{type?: string, field?: string, message?: string}} error an ack's, a job's or a route's error
 * @returns {string}
 */
export function errorText(error) {
  const type = String(error?.type ?? "");
  if (type === "invalid_request" && error.field) return t("error.invalid_field", { field: fieldLabel(error.field) });
  if (type && type !== "unknown" && hasKey(`error.${type}`)) return t(`error.${type}`);
  return error?.message || t("error.unknown");
}

/**
 * The server's own words for an error whose code errorText() translated (to show apart, as a detail), else "".
 * @param {{type?: string, message?: string}} error
 * @returns {string}
 */
export function errorDetail(error) {
  const message = String(error?.message ?? "");
  return message && errorText(error) !== message ? message : "";
}

/**
 * Anything caught or received as an error, as data errorText() takes: an error object is kept, an exception or
 * a text becomes `{type: "unknown", message}` (its own words are then shown).
 * @param {unknown} value
 * @returns {{type: string, field?: string, message: string}}
 */
export function errorOf(value) {
  if (value && typeof value === "object" && typeof value.type === "string") {
    return { type: value.type, field: value.field ?? undefined, message: String(value.message ?? "") };
  }
  return { type: "unknown", message: String(value?.message ?? value ?? "") };
}

/** The label of a form field the server named (`field.<name>`), else the name itself. */
function fieldLabel(name) {
  return hasKey(`field.${name}`) ? t(`field.${name}`) : String(name);
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
