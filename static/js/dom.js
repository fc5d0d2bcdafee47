/**
 * DOM helpers: queries, a safe element builder (text only through textContent), event delegation,
 * downloads and small formatting helpers. Nothing here runs until called.
 * @module dom
 */

/**
 * The first element matching a selector.
 * @param {string} selector CSS selector
 * @param {ParentNode} [root=document] where to look
 * @returns {any} the element, or null
 */
export function $(selector, root = document) {
  return root.querySelector(selector);
}

/**
 * Every element matching a selector, as an array.
 * @param {string} selector CSS selector
 * @param {ParentNode} [root=document] where to look
 * @returns {any[]}
 */
export function $$(selector, root = document) {
  return [...root.querySelectorAll(selector)];
}

/**
 * Build an element. `text` goes in through textContent and string children become text nodes, so
 * user data can never become markup. Event-handler and style attributes are refused (CSP).
 * @param {string} tag element name
 * @param {{className?: string, text?: unknown, data?: Object<string, unknown>, attrs?: Object<string, unknown>}} [props]
 * @param {Array<Node|string|null|undefined|false>} [children]
 * @returns {any} the new element
 */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  for (const [key, value] of Object.entries(props.data ?? {})) {
    if (value !== undefined && value !== null) node.dataset[key] = String(value);
  }
  for (const [key, value] of Object.entries(props.attrs ?? {})) {
    if (/^on|^style$/i.test(key)) throw new Error(`el(): refusing attribute ${key}`);
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/**
 * Listen on a container for events from descendants matching a selector.
 * @param {Element} root container
 * @param {string} type event type
 * @param {string} selector which descendants count
 * @param {(event: Event, match: any) => void} handler called with the event and the matched element
 * @returns {() => void} a function that removes the listener
 */
export function delegate(root, type, selector, handler) {
  const listener = (event) => {
    const match = event.target instanceof Element ? event.target.closest(selector) : null;
    if (match && root.contains(match)) handler(event, match);
  };
  root.addEventListener(type, listener);
  return () => root.removeEventListener(type, listener);
}

/**
 * Read a JSON `<script type="application/json">` block.
 * @param {string} id element id
 * @returns {any} the parsed data
 */
export function readJsonScript(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

/**
 * Seconds as m:ss.
 * @param {number} seconds
 * @returns {string}
 */
export function formatTime(seconds) {
  const whole = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

/**
 * A local date and time as `2025-08-19 14:05` (the browser's time zone, not UTC).
 * @param {Date} [date]
 * @param {boolean} [seconds=false] add `:09`
 * @returns {string}
 */
export function localStamp(date = new Date(), seconds = false) {
  const two = (value) => String(value).padStart(2, "0");
  const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  return `${day} ${two(date.getHours())}:${two(date.getMinutes())}${seconds ? `:${two(date.getSeconds())}` : ""}`;
}

/**
 * A local timestamp usable in a file name: 2025-08-19T14-05-09 (the browser's time zone, not UTC).
 * @param {Date} [date]
 * @returns {string}
 */
export function fileStamp(date = new Date()) {
  return localStamp(date, true).replace(" ", "T").replaceAll(":", "-");
}

/**
 * The last segment of a path or URL: `static/audio/x.wav` → `x.wav`.
 * @param {string} path
 * @returns {string}
 */
export function fileName(path) {
  return String(path).split("?")[0].split("/").pop();
}

/**
 * A file name without its extension: `static/stems/x/vocals.wav` → `vocals`.
 * @param {string} path
 * @returns {string}
 */
export function stemOf(path) {
  return fileName(path).replace(/\.[^.]+$/, "");
}

/**
 * A server path as a root-relative URL: `static/audio/x.wav` → `/static/audio/x.wav`.
 * @param {string} path
 * @returns {string}
 */
export function assetUrl(path) {
  return path.startsWith("/") ? path : `/${path}`;
}

/**
 * Offer a Blob as a download under a given name.
 * @param {Blob} blob content
 * @param {string} name file name
 * @returns {void}
 */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { attrs: { href: url, download: name, hidden: true } });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
