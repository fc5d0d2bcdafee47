/**
 * HTTP calls to the server's JSON routes and uploads; errors carry the server's message.
 * @module http
 */

/** An HTTP answer that is not 2xx, or a network failure (status 0). */
export class HttpError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} message the server's `error` text or the status text
   */
  constructor(status, message) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

async function send(url, options) {
  let response;
  try {
    response = await fetch(url, { ...options, headers: { Accept: "application/json", ...options?.headers } });
  } catch (error) {
    throw new HttpError(0, error.message);
  }
  const isJson = (response.headers.get("content-type") ?? "").includes("json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) throw new HttpError(response.status, body?.error ?? response.statusText);
  return body;
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
export async function getBytes(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new HttpError(0, error.message);
  }
  if (!response.ok) throw new HttpError(response.status, response.statusText);
  return response.arrayBuffer();
}
