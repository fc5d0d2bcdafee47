/**
 * HTTP calls to the server's JSON routes, uploads and downloads; errors carry the server's message.
 * @module http
 */

/** An HTTP answer that is not 2xx, or a network failure (status 0, type `offline`). */
export class HttpError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} message the server's `error` text or the status text
   * @param {string} [type] the server's error code (`error.type`, or `error_type` of the older routes)
   */
  constructor(status, message, type) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.type = type || (status === 0 ? "offline" : `http_${status}`);
    this.field = undefined;
  }

  /**
   * The error as data (`{type, field, message}`), as i18n's errorText() and translate() take it.
   * @returns {{type: string, field?: string, message: string}}
   */
  toJSON() {
    return { type: this.type, field: this.field, message: this.message };
  }
}

async function send(url, options) {
  const response = await fetchOk(url, { ...options, headers: { Accept: "application/json", ...options?.headers } });
  return isJson(response) ? response.json() : null;
}

/**
 * GET a JSON document.
 * @param {string} url same-origin URL
 * @returns {Promise<any>} the parsed body
 * @throws {HttpError}
 */
export function getJson(url) {
  return send(url, { method: "GET" });
}

/**
 * POST a JSON body and read the JSON answer.
 * @param {string} url same-origin URL
 * @param {object} [body] sent as JSON
 * @returns {Promise<any>} the parsed answer
 * @throws {HttpError}
 */
export function postJson(url, body = {}) {
  return send(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

/**
 * Upload one file as multipart form data.
 * @param {string} url upload route
 * @param {string} field form field name the route reads
 * @param {File} file the file
 * @returns {Promise<any>} the parsed answer
 * @throws {HttpError}
 */
export function uploadFile(url, field, file) {
  const form = new FormData();
  form.append(field, file, file.name);
  return send(url, { method: "POST", body: form });
}

/**
 * GET a binary file.
 * @param {string} url same-origin URL
 * @returns {Promise<ArrayBuffer>}
 * @throws {HttpError}
 */
export function getBytes(url) {
  return fetchBody(url, { method: "GET" }, "arrayBuffer");
}

/**
 * GET a file the server builds (a ZIP, say) as a Blob, to save under a name of the page's choosing.
 * @param {string} url same-origin URL
 * @returns {Promise<Blob>}
 * @throws {HttpError} with the server's `error` text when it answers JSON
 */
export function getBlob(url) {
  return fetchBody(url, { method: "GET" }, "blob");
}

/**
 * POST a JSON body and read the answer as a Blob (a WAV mixdown, say).
 * @param {string} url same-origin URL
 * @param {object} body sent as JSON
 * @returns {Promise<Blob>}
 * @throws {HttpError} with the server's `error` text when it answers JSON
 */
export function postJsonForBlob(url, body) {
  const options = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  return fetchBody(url, options, "blob");
}

/** Fetch, turning a network failure or a non-2xx answer into an HttpError (with the JSON `error` if any). */
async function fetchOk(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new HttpError(0, error.message, "offline");
  }
  if (!response.ok) throw await refusal(response);
  return response;
}

/** Fetch and read the whole body (`arrayBuffer` or `blob`); a connection lost while reading is status 0. */
async function fetchBody(url, options, type) {
  const response = await fetchOk(url, options);
  try {
    return await response[type]();
  } catch (error) {
    throw new HttpError(0, error.message);
  }
}

function isJson(response) {
  return (response.headers.get("content-type") ?? "").includes("json");
}

/** The HttpError of a refused request: the server's message and code, from `{error: {type, field, message}}` or `{error, error_type}`. */
async function refusal(response) {
  let body = null;
  try {
    body = isJson(response) ? await response.json() : null;
  } catch {
    body = null;
  }
  const error = body?.error;
  const detail = error && typeof error === "object" ? error : { message: error, type: body?.error_type };
  const failure = new HttpError(response.status, String(detail.message || response.statusText), detail.type);
  if (typeof detail.field === "string") failure.field = detail.field;
  return failure;
}
