/**
 * Pure node builders: chat messages, the track card's head and parameters, queue items, stem rows
 * and toasts. They attach no listeners and put every piece of user or server text in through
 * textContent (dom.el) or translate().
 * @module render
 */
import { assetUrl, el, fileName } from "./dom.js";
import { errorDetail, errorOf, formatBytes, hasKey, language, t, translate } from "./i18n.js";

const ACTIVE_STATES = new Set(["sending", "queued", "running"]);

/**
 * A translated element: `translate(el(tag, props), key, vars)`.
 * @param {string} tag
 * @param {string} key dictionary key
 * @param {Object<string, unknown>} [vars]
 * @param {object} [props] dom.el props
 * @returns {any}
 */
function tEl(tag, key, vars, props = {}) {
  return translate(el(tag, props), key, vars);
}

/**
 * An empty progress bar (`role=progressbar`), shaped like the ones in the page.
 * @param {object} [props] dom.el props for the bar
 * @returns {any}
 */
function progressBar(props = {}) {
  return el("div", { className: "bar", ...props, attrs: { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, ...props.attrs } },
    [el("span", { className: "bar-fill" })]);
}

/**
 * Move a progress bar built by progressBar() (or shaped like it in the page).
 * @param {HTMLElement} bar
 * @param {number} fraction 0..1
 * @returns {void}
 */
export function setProgress(bar, fraction) {
  const percent = Math.round(Math.min(Math.max(Number(fraction) || 0, 0), 1) * 100);
  bar.setAttribute("aria-valuenow", String(percent));
  bar.firstElementChild.style.width = `${percent}%`;
}

/**
 * A chat message node for a stored record.
 * @param {object} record a chat record (see chat.js)
 * @returns {any} an `<li data-role=message>`
 */
export function messageNode(record) {
  const node = el("li", { data: { role: "message", messageId: record.id, kind: record.role } });
  fillMessage(node, record);
  return node;
}

/**
 * Refill an existing message node from its record (keyed update: the node itself is kept).
 * @param {HTMLElement} node
 * @param {object} record
 * @returns {void}
 */
export function fillMessage(node, record) {
  node.className = `msg msg-${record.role}`;
  node.dataset.state = record.state ?? "";
  if (record.job) node.dataset.jobId = record.job;
  if (record.track) node.dataset.track = record.track;
  node.replaceChildren(...(record.role === "user" ? userParts(record) : jobParts(record, node.querySelector("[data-role=job-bar]"))));
}

function userParts(record) {
  return [
    record.rerun ? tEl("span", "chat.rerun_badge", undefined, { className: "badge", data: { role: "rerun-badge" } }) : null,
    el("p", { className: "msg-text", data: { role: "message-text" }, text: record.text ?? "" }),
    timeNode(record.at),
  ].filter(Boolean);
}

function timeNode(at) {
  const date = new Date(at || 0);
  return el("time", { className: "msg-time", attrs: { datetime: date.toISOString() },
    text: date.toLocaleTimeString(language(), { hour: "2-digit", minute: "2-digit" }) });
}

/** The parts of a job message; an existing bar is moved, not rebuilt, so its width animates. */
function jobParts(record, bar) {
  const state = record.state ?? "sending";
  const active = ACTIVE_STATES.has(state);
  const parts = [record.kind ? splitHead(record) : null, el("p", { className: "job-line" }, [
    statusNode(record, state),
    active ? el("span", { className: "job-percent", data: { role: "job-percent" }, text: `${Math.round((record.progress ?? 0) * 100)}%` }) : null,
  ])];
  if (active) {
    const current = bar ?? progressBar({ data: { role: "job-bar" }, attrs: { "aria-label": t("chat.progress"), "data-i18n-attr": "aria-label:chat.progress" } });
    setProgress(current, record.progress ?? 0);
    parts.push(current);
  }
  if (state === "done" && record.audio) parts.push(...resultNode(record));
  if (state === "done" && record.kind) parts.push(splitResult(record));
  if (record.error && !["done", "cancelled"].includes(state)) parts.push(...errorNodes(record.error));
  const notes = [...(record.notes ?? [])];
  if (record.continuation) notes.push({ key: "note.continuation", vars: { seconds: record.continuation } });
  if (notes.length) parts.push(el("ul", { className: "job-notes" }, notes.map((note) => tEl("li", note.key, note.vars))));
  parts.push(timeNode(record.at));
  return parts.filter(Boolean);
}

/** What a stem split's message splits: a badge (Stems / Demucs) and the track's or the file's name. */
function splitHead(record) {
  const kindKey = `queue.kind.${record.kind}`;
  return el("p", { className: "job-kind", data: { role: "job-kind" } }, [
    hasKey(kindKey) ? tEl("span", kindKey, undefined, { className: "badge" }) : null,
    el("span", { className: "job-label", text: record.label ?? "" }),
  ].filter(Boolean));
}

/** A finished split: how many stems, and a button that shows them (the track's card, or the file's mixer). */
function splitResult(record) {
  const data = record.set ? { action: "open-stems", set: record.set, label: record.label } : { action: "open-stems", source: record.source };
  return el("p", { className: "job-result" }, [
    typeof record.stems === "number" ? tEl("span", "stems.chat_count", { count: record.stems }) : null,
    tEl("button", "stems.chat_show", undefined, { className: "small", attrs: { type: "button" }, data }),
  ].filter(Boolean));
}

function statusNode(record, state) {
  const props = { className: "job-status", data: { role: "job-status" } };
  if (state === "running" && record.phase === "downloading" && record.total > 0) {
    const percent = Math.floor((Math.min(record.downloaded ?? 0, record.total) / record.total) * 100);
    return tEl("span", "phase.downloading_bytes", { done: formatBytes(record.downloaded ?? 0), total: formatBytes(record.total), percent }, props);
  }
  if (state === "running") {
    const key = `phase.${record.phase}`;
    return tEl("span", hasKey(key) ? key : "phase.working", undefined, props);
  }
  if (state === "queued" && record.position) return tEl("span", "job.queued_position", { position: record.position }, props);
  return tEl("span", `job.state.${state}`, undefined, props);
}

function resultNode(record) {
  const timing = timingValue({ generate_seconds: record.took, total_seconds: record.took, realtime_factor: record.rtf, device: record.device }, "timing.chat");
  const result = el("p", { className: "job-result" }, [
    el("a", {
      className: "track-link", text: fileName(record.audio),
      attrs: { href: assetUrl(record.audio) }, data: { action: "open-track", track: record.track, json: record.json, audio: record.audio },
    }),
    record.seed !== undefined && record.seed !== null ? tEl("span", "job.seed", { seed: record.seed }, { className: "job-seed" }) : null,
  ]);
  const nodes = record.takes?.length > 1 ? [result, takesNode(record)] : [result];
  return timing ? [...nodes, tEl("p", timing.key, timing.vars, { className: "job-timing", data: { role: "job-timing" } })] : nodes;
}

/**
 * The letter of take `index` (A, B, C ...), as the chat and the player's A/B switch name takes.
 * @param {number} index from 0
 * @returns {string}
 */
export function takeLetter(index) {
  return String.fromCharCode(65 + index);
}

/** The takes of a group, side by side: one link each, opening it in the player (which then switches A/B). */
function takesNode(record) {
  return el("p", { className: "job-takes", data: { role: "job-takes" } }, record.takes.map((take, index) => el("a", {
    className: "take-link", text: takeLetter(index),
    attrs: { href: assetUrl(take.audio), title: `${fileName(take.audio)} · ${t("job.seed", { seed: take.seed })}` },
    data: { action: "open-track", track: take.track, json: take.json, audio: take.audio, group: record.job },
  })));
}

/**
 * An error line in the page's language (i18n's errorText: the code's text, else the server's message) and,
 * when the code was translated, the server's own words apart as a detail (they are English).
 * @param {{type?: string, message?: string, field?: string}} error
 * @returns {any[]}
 */
function errorNodes(error) {
  const data = errorOf(error);
  const detail = errorDetail(data);
  return [
    tEl("p", "error.line", { error: data }, { className: "job-error", data: { role: "job-error" } }),
    detail ? el("p", { className: "job-error-detail", data: { role: "job-error-detail" }, attrs: { lang: "en" }, text: detail }) : null,
  ].filter(Boolean);
}

/**
 * The head of the track card: title and prompt.
 * @param {{name: string, meta?: object}} track
 * @returns {any[]}
 */
export function trackHeadNodes(track) {
  return [
    el("h3", { className: "card-title", data: { role: "track-title" }, text: track.name }),
    el("p", { className: "card-prompt", data: { role: "track-prompt" }, text: track.meta?.prompt ?? "" }),
  ];
}

/**
 * The head of the card while a job's preview plays: a live title and the job's prompt.
 * @param {string} label the job's label (its prompt)
 * @returns {any[]}
 */
export function liveHeadNodes(label) {
  return [
    tEl("h3", "live.title", undefined, { className: "card-title", data: { role: "track-title" } }),
    el("p", { className: "card-prompt", data: { role: "track-prompt" }, text: label }),
  ];
}

/**
 * The parameter list of a track (`<dt>`/`<dd>` pairs, each `<dd data-param=...>`).
 * @param {object} meta the track JSON
 * @returns {any[]}
 */
export function trackParamNodes(meta) {
  const p = meta?.parameters ?? {};
  const rows = [
    ["model", meta?.model],
    ["length", meta?.duration_seconds !== undefined ? { key: "unit.seconds", vars: { value: meta.duration_seconds } } : null],
    ["seed", p.seed],
    p.top_p !== undefined ? ["top_p", p.top_p] : ["top_k", p.top_k],
    ["temperature", p.temperature],
    ["cfg_coef", p.cfg_coef],
    ["format", formatValue(p)],
    ["sample_rate", p.sample_rate ? { key: "unit.hz", vars: { value: p.sample_rate } } : null],
    ["channels", p.channels],
    ["mbd", p.multi_band_diffusion ? { key: `mbd.${p.multi_band_diffusion.status}` } : null],
    ["auto_tune", autoTuneValue(p.auto_tune)],
    ["artist", p.artist],
    ["audio_prompt", p.audio_prompt],
    ["continuation", p.append_mode
      ? { key: "param.continuation_value", vars: { name: p.continuation_source ?? "", seconds: p.continuation_original_seconds } }
      : null],
    ["stem_split", p.stem_split?.requested ? { key: `stem_split.${p.stem_split.requested}` } : null],
    ["loudness", loudnessValue(p.loudness)],
    ["timing", timingValue(meta?.timing)],
    ["created", meta?.created ? new Date(meta.created).toLocaleString(language()) : null],
  ];
  return rows.filter(([, value]) => value !== undefined && value !== null && value !== "").flatMap(([name, value]) => [
    tEl("dt", `param.${name}`),
    valueNode(value, { data: { param: name } }),
  ]);
}

function valueNode(value, props) {
  const key = typeof value === "object" ? value.key : null;
  if (key && hasKey(key)) return tEl("dd", key, value.vars, props);
  return el("dd", { ...props, text: key ? key.split(".").pop() : value });
}

function formatValue(p) {
  if (!p.format) return null;
  return p.format_requested && p.format_requested !== p.format
    ? { key: "format.fallback", vars: { format: p.format, requested: p.format_requested } }
    : p.bitrate_kbps ? { key: "format.bitrate", vars: { format: p.format.toUpperCase(), kbps: p.bitrate_kbps } }
      : p.format.toUpperCase();
}

/** A number in the page's language with `digits` decimals (−14.0, −14,0), or "—" when unknown. */
function decimal(value, digits = 1) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return value.toLocaleString(language(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** What the file measures (`parameters.loudness`): integrated LUFS against the target, and its true peak. */
function loudnessValue(block) {
  if (!block || typeof block !== "object" || block.lufs === undefined) return null;
  const vars = { lufs: decimal(block.lufs), peak: decimal(block.true_peak_dbtp), target: decimal(block.target_lufs, 0) };
  if (typeof block.target_lufs !== "number") return { key: "loudness.not_normalised", vars };
  return { key: block.peak_limited ? "loudness.limited" : "loudness.measured", vars };
}

/**
 * How long a track took (`timing`): seconds generating and in all, the real-time factor and the device.
 * @param {{generate_seconds?: number, total_seconds?: number, realtime_factor?: number, device?: string}} [timing]
 * @param {string} [key] the dictionary key of the text (`timing.value` on the card, `timing.chat` in the chat)
 * @returns {{key: string, vars: object}|null}
 */
export function timingValue(timing, key = "timing.value") {
  if (!timing || typeof timing.generate_seconds !== "number") return null;
  return { key, vars: { seconds: decimal(timing.generate_seconds), total: decimal(timing.total_seconds),
    factor: decimal(timing.realtime_factor, 2), device: String(timing.device ?? "") } };
}

function autoTuneValue(block) {
  if (!block) return null;
  if (block.disabled) return { key: "autotune.off" };
  return autoTuneChanges(block) || { key: "autotune.unchanged" };
}

/**
 * What auto-tune changed, as text: `temperature 1.2 → 1.05, cfg_coef 4 → 3.6` ("" when nothing).
 * @param {{changes?: Object<string, {old: number, new: number}>}} [block] the `auto_tune` block
 * @returns {string}
 */
export function autoTuneChanges(block) {
  return Object.entries(block?.changes ?? {}).map(([name, change]) => `${name} ${change.old} → ${change.new}`).join(", ");
}

/**
 * One row of the queue panel: a generation making a preview has a Listen button (its live preview).
 * @param {{id: string, label: string, state: string, kind: string, progress: number, phase: string, preview?: boolean}} job
 * @param {number} position 0 for the running job, else 1-based queue position
 * @param {boolean} [canCancel] whether this page may cancel the job (its own, or the local user's page)
 * @returns {any}
 */
export function queueItemNode(job, position, canCancel = true) {
  const running = job.state === "running";
  const phaseKey = `phase.${job.phase}`;
  const kindKey = `queue.kind.${job.kind}`;
  return el("li", { className: "queue-item", data: { role: "queue-item", jobId: job.id, state: job.state } }, [
    el("span", { className: "queue-position", text: running ? "▶" : `#${position}` }),
    job.kind !== "generate" && hasKey(kindKey) ? tEl("span", kindKey, undefined, { className: "badge" }) : null,
    el("span", { className: "queue-label", data: { role: "queue-label" }, text: job.label }),
    running
      ? el("span", { className: "queue-progress" }, [
        tEl("span", hasKey(phaseKey) ? phaseKey : "phase.working", undefined, { data: { role: "queue-phase" } }),
        el("span", { data: { role: "queue-percent" }, text: ` ${Math.round((job.progress ?? 0) * 100)}%` }),
      ])
      : tEl("span", "queue.waiting", undefined, { className: "queue-progress" }),
    job.kind === "generate" && job.preview !== false
      ? tEl("button", "queue.listen", undefined, { className: "small", attrs: { type: "button" }, data: { action: "listen-job", jobId: job.id } })
      : null,
    canCancel
      ? tEl("button", "action.cancel", undefined, { className: "small", attrs: { type: "button" }, data: { action: "cancel-queued", jobId: job.id } })
      : null,
  ]);
}

/**
 * One stem row of the mixer.
 * @param {{name: string, url: string}} stem
 * @returns {any}
 */
export function stemRowNode(stem) {
  const nameKey = `stem.${stem.name}`;
  const label = hasKey(nameKey) ? tEl("span", nameKey) : el("span", { text: stem.name });
  const toggle = (action, key) => tEl("button", key, undefined, {
    className: "small toggle", attrs: { type: "button", "aria-pressed": "false" }, data: { action },
  });
  return el("li", { className: "stem", data: { role: "stem", stem: stem.name } }, [
    el("label", { className: "check stem-name" }, [el("input", { attrs: { type: "checkbox", checked: true }, data: { role: "stem-select" } }), label]),
    toggle("stem-play", "stems.play"),
    toggle("stem-solo", "stems.solo"),
    toggle("stem-mute", "stems.mute"),
    el("label", { className: "stem-volume" }, [
      tEl("span", "stems.volume", undefined, { className: "visually-hidden" }),
      el("input", { attrs: { type: "range", min: 0, max: 2, step: 0.01, value: 1 }, data: { role: "stem-volume" } }),
    ]),
    tEl("a", "stems.download", undefined, { className: "button small", attrs: { href: assetUrl(stem.url), download: fileName(stem.url) } }),
  ]);
}

/**
 * A toast line.
 * @param {{key?: string, vars?: object, text?: string, kind?: string}} message
 * @returns {any}
 */
export function toastNode({ key, vars, text, kind = "info" }) {
  const body = key ? tEl("span", key, vars) : el("span", { text });
  return el("li", { className: `toast toast-${kind}`, data: { role: "toast", kind } }, [
    body,
    el("button", { className: "toast-close", text: "×", attrs: { type: "button", "aria-label": t("action.close"), "data-i18n-attr": "aria-label:action.close" },
      data: { action: "close-toast" } }),
  ]);
}
