/**
 * The app's event bus: one EventTarget shared by every module instead of `window.*` globals.
 *
 * Server events keep their wire names (`progress`, `on_finish_audio` ...); UI events are named
 * `area:event` (`track:show`, `composer:busy` ...).
 * @module bus
 */

const target = new EventTarget();

/**
 * Subscribe to a bus event.
 * @param {string} type event name
 * @param {(detail: any) => void} handler called with the event's detail
 * @returns {() => void} a function that unsubscribes
 */
export function on(type, handler) {
  const listener = (event) => handler(event.detail);
  target.addEventListener(type, listener);
  return () => target.removeEventListener(type, listener);
}

/**
 * Publish a bus event to every subscriber, synchronously.
 * @param {string} type event name
 * @param {any} [detail] payload handed to the handlers
 * @returns {void}
 */
export function emit(type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}
