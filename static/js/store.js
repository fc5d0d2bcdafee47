/**
 * localStorage access for the app's own keys, as JSON data (never HTML), failing soft when
 * storage is full or disabled; and this tab's own values (sessionStorage: kept across a reload, not shared
 * with other tabs).
 * @module store
 */

const PREFIX = "acw.";

/**
 * The full localStorage key of an app key (for `storage` events from other tabs).
 * @param {string} name app key, e.g. `chat.v2`
 * @returns {string}
 */
export function storageKey(name) {
  return PREFIX + name;
}

/**
 * Read a JSON value.
 * @template T
 * @param {string} name app key
 * @param {T} fallback returned when the key is missing or unreadable
 * @returns {T}
 */
export function load(name, fallback) {
  try {
    const raw = localStorage.getItem(storageKey(name));
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

/**
 * Write a JSON value.
 * @param {string} name app key
 * @param {unknown} value anything JSON can encode
 * @returns {boolean} false when the browser refused (quota, privacy mode)
 */
export function save(name, value) {
  try {
    localStorage.setItem(storageKey(name), JSON.stringify(value));
    return true;
  } catch {
    return false;
  }
}

/**
 * Forget a key.
 * @param {string} name app key
 * @returns {void}
 */
export function remove(name) {
  try {
    localStorage.removeItem(storageKey(name));
  } catch {
    // storage disabled: nothing to remove
  }
}

/**
 * Read one of this tab's own values (sessionStorage: it survives a reload of the tab, other tabs have theirs).
 * @param {string} name app key
 * @returns {string|null} null when missing or unreadable
 */
export function loadTabValue(name) {
  try {
    return sessionStorage.getItem(storageKey(name));
  } catch {
    return null;
  }
}

/**
 * Keep one of this tab's own values.
 * @param {string} name app key
 * @param {string} value
 * @returns {void}
 */
export function saveTabValue(name, value) {
  try {
    sessionStorage.setItem(storageKey(name), value);
  } catch {
    // storage disabled: the value lasts as long as the page
  }
}
