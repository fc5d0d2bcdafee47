/**
 * The only user of the Socket.IO client: connects, forwards every server event onto the bus under
 * its wire name, and sends requests whose acks come back as Promises.
 * @module socket
 */
import { io } from "../vendor/socket.io.esm.min.js";
import { emit } from "./bus.js";
import { loadTabValue, saveTabValue } from "./store.js";

/** Server → client events forwarded to the bus. */
const SERVER_EVENTS = [
  "audio_json_pairs", "queue_state", "update_seed", "add_to_queue", "job_started", "progress",
  "continuation_applied", "on_finish_audio", "request_error", "tracks_changed", "postprocess_queued",
  "stem_progress", "postprocess_done", "demucs_any_progress", "demucs_any_done", "audio_preview", "session",
];
const CLIENT_KEY = "client.id";

const ACK_TIMEOUT_MS = 10_000;

let socket = null;

/**
 * Connect to the page's own server (WebSocket first) and start forwarding events.
 * Emits `connection:changed {connected, transport}` on the bus.
 * @returns {void}
 */
export function initSocket() {
  socket = io({ transports: ["websocket", "polling"], tryAllTransports: true, auth: { client: clientId() } });
  for (const name of SERVER_EVENTS) socket.on(name, (payload) => emit(name, payload));
  const report = (connected) => emit("connection:changed", {
    connected, transport: connected ? socket.io.engine.transport.name : "",
  });
  socket.on("connect", () => report(true));
  socket.on("disconnect", () => report(false));
  socket.on("connect_error", () => report(false));
}

/**
 * This tab's random id (kept in the tab's sessionStorage: the same after a reload, another in another tab): the
 * server stamps the jobs it queues with a tag of it (the `owner` of the `session` event and of the queue's jobs),
 * so this tab knows its own jobs after a reload, and only it may cancel them on a shared server.
 * @returns {string}
 */
function clientId() {
  let id = loadTabValue(CLIENT_KEY) ?? "";
  if (!/^[0-9a-f]{32}$/.test(id)) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
    saveTabValue(CLIENT_KEY, id);
  }
  return id;
}

/**
 * Send a client → server event and wait for its ack.
 * @param {string} event event name, e.g. `submit_sliders`
 * @param {object} payload event payload
 * @param {number} [timeoutMs] how long to wait for the ack
 * @returns {Promise<{ok: boolean, error?: {type: string, message?: string, field?: string}}>} the ack,
 *   or an `offline` / `timeout` error ack; never rejects
 */
export function request(event, payload, timeoutMs = ACK_TIMEOUT_MS) {
  return new Promise((resolve) => {
    if (!socket?.connected) {
      resolve({ ok: false, error: { type: "offline" } });
      return;
    }
    socket.timeout(timeoutMs).emit(event, payload, (error, ack) => {
      if (error) resolve({ ok: false, error: { type: "timeout" } });
      else resolve(ack && typeof ack === "object" ? ack : { ok: false, error: { type: "bad_answer" } });
    });
  });
}
