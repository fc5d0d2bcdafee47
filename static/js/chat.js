/**
 * The chat: the message list of this browser's prompts and jobs, its toolbar (compact view, export)
 * and its track links. Messages are kept in localStorage as structured records (never HTML) and
 * rendered by key, so a record updates its own node; the records live in chat-records, their nodes in
 * chat-view and the life of each job in chat-jobs.
 * @module chat
 */
import { emit, on } from "./bus.js";
import { adoptOpenJobs, bindJobEvents, updateGuard } from "./chat-jobs.js";
import { historyFromServer, isChatKey, persist, readRecords } from "./chat-records.js";
import { bindSplitEvents } from "./chat-stems.js";
import { render } from "./chat-view.js";
import { $, delegate, fileName, fileStamp, localStamp, saveBlob } from "./dom.js";
import { errorText, t } from "./i18n.js";
import { load, save } from "./store.js";

const COMPACT_KEY = "chat.compact";

/**
 * Restore the chat (or rebuild it from the server's tracks when nothing is stored) and wire the
 * job events, the toolbar (export, compact) and the track links.
 * @param {ParentNode} root the page
 * @returns {Promise<void>}
 */
export async function initChat(root) {
  const chat = {
    log: $("[data-role=chat-log]", root),
    scroller: $("[data-role=chat-scroll]", root),
    empty: $("[data-role=chat-empty]", root),
    records: readRecords(),
    nodes: new Map(),
    pending: new Set(),
    early: new Map(),
    connectSnapshot: false,
    owner: null,
  };
  if (!chat.records.length) chat.records = await historyFromServer();
  adoptOpenJobs(chat);
  persist(chat);
  render(chat);
  bindToolbar(chat, root);
  bindJobEvents(chat);
  bindSplitEvents(chat);
  bindUiEvents(chat);
  updateGuard(chat);
}

// ---- UI events, toolbar -----------------------------------------------------------------------

function bindUiEvents(chat) {
  delegate(chat.log, "click", "[data-action=open-track]", (event, link) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const takes = chat.records.find((record) => link.dataset.group && record.job === link.dataset.group)?.takes;
    emit("track:open", { name: link.dataset.track, audio: link.dataset.audio, json: link.dataset.json, takes });
  });
  delegate(chat.log, "click", "[data-action=open-stems]", (event, button) => {
    const { source, set, label } = button.dataset;
    if (source) emit("track:open", { name: source, json: `static/audio/${source}.json`, reveal: true });
    else if (set) emit("stems:open", { id: set, name: label });
  });
  on("tracks:removed", ({ all, names, clearAll, kept }) => {
    const gone = new Set(names);
    const locked = new Set(kept ?? []);
    const mine = (record) => chat.pending.has(record.id) || chat.pending.has(record.reply);
    // Clear all with locked tracks kept: only their messages stay (this tab knows their names).
    const stays = (record) => (clearAll && kept?.length ? locked.has(record.track) || locked.has(record.source)
      : !gone.has(record.track) && !gone.has(record.source));
    const keep = (record) => mine(record) || (!all && stays(record));
    chat.records = chat.records.filter(keep);
    persist(chat);
    render(chat);
  });
  window.addEventListener("storage", (event) => {
    if (isChatKey(event.key)) mergeStored(chat);
  });
  on("i18n:changed", () => render(chat));
}

/** Another tab saved the chat: take its records, but keep this tab's own open jobs as they are here. */
function mergeStored(chat) {
  const mine = new Map(chat.records
    .filter((record) => chat.pending.has(record.id) || chat.pending.has(record.reply))
    .map((record) => [record.id, record]));
  const stored = readRecords().map((record) => {
    const local = mine.get(record.id);
    mine.delete(record.id);
    return local ?? record;
  });
  chat.records = [...stored, ...mine.values()];
  render(chat);
}

function bindToolbar(chat, root) {
  const compact = $("[data-action=toggle-compact]", root);
  const setCompact = (on) => {
    chat.log.dataset.compact = String(on);
    compact.setAttribute("aria-pressed", String(on));
    save(COMPACT_KEY, on);
  };
  setCompact(load(COMPACT_KEY, false) === true);
  compact.addEventListener("click", () => setCompact(chat.log.dataset.compact !== "true"));
  $("[data-action=export-json]", root).addEventListener("click", () => exportJson(chat));
  $("[data-action=export-txt]", root).addEventListener("click", () => exportText(chat));
}

function exportJson(chat) {
  const data = { app: "audiocraft-webui", exported_at: new Date().toISOString(), messages: chat.records };
  saveBlob(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }), `chat_${fileStamp()}.json`);
}

function exportText(chat) {
  const text = chat.records.map(textLine).join("\n\n");
  saveBlob(new Blob([`${text}\n`], { type: "text/plain;charset=utf-8" }), `chat_${fileStamp()}.txt`);
}

/** One record as a line of text, at the browser's local time. */
function textLine(record) {
  const when = localStamp(new Date(record.at || 0));
  if (record.role === "user") return `[${when}] ${t("export.user")}: ${record.text ?? ""}`;
  if (record.kind) {
    const what = `${t(`queue.kind.${record.kind}`)} · ${record.label ?? ""}`;
    return `[${when}] ${t("export.system")}: ${what} — ${t(`job.state.${record.state}`)}${record.error ? ` — ${errorText(record.error)}` : ""}`;
  }
  const detail = record.state === "done" && record.audio
    ? `${fileName(record.audio)}${record.seed !== undefined ? ` (${t("job.seed", { seed: record.seed })})` : ""}`
    : record.error ? errorText(record.error) : "";
  return `[${when}] ${t("export.system")}: ${t(`job.state.${record.state}`)}${detail ? ` — ${detail}` : ""}`;
}
