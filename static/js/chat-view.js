/**
 * The chat's rendering: one node per record, filled in place when the record changes, and the scroll
 * that follows the newest message unless the user scrolled up.
 * @module chat-view
 */
import { newId, persist } from "./chat-records.js";
import { fillMessage, messageNode } from "./render.js";

const NEAR_BOTTOM_PX = 80;

function nodeOf(chat, record) {
  const node = chat.nodes.get(record.id);
  if (node) {
    fillMessage(node, record);
    return node;
  }
  const created = messageNode(record);
  chat.nodes.set(record.id, created);
  return created;
}

/**
 * Show the records in order, dropping the nodes of records that are gone; scroll to the newest.
 * @param {object} chat the chat state (see initChat in chat.js)
 * @returns {void}
 */
export function render(chat) {
  const ids = new Set(chat.records.map((record) => record.id));
  for (const [id, node] of chat.nodes) {
    if (!ids.has(id)) {
      node.remove();
      chat.nodes.delete(id);
    }
  }
  chat.log.append(...chat.records.map((record) => nodeOf(chat, record)));
  chat.empty.hidden = chat.records.length > 0;
  scrollToEnd(chat);
}

function nearBottom(chat) {
  const { scrollTop, scrollHeight, clientHeight } = chat.scroller;
  return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
}

function scrollToEnd(chat) {
  chat.scroller.scrollTop = chat.scroller.scrollHeight;
}

/**
 * Append a new record, show it, scroll to it and save.
 * @param {object} chat the chat state
 * @param {object} fields the record's fields (id and time are added)
 * @returns {object} the record
 */
export function addRecord(chat, fields) {
  const record = { id: newId(), at: Date.now(), ...fields };
  chat.records.push(record);
  chat.log.append(nodeOf(chat, record));
  chat.empty.hidden = true;
  scrollToEnd(chat);
  persist(chat);
  return record;
}

/**
 * Change a record and its node; keep the view at the bottom if it was there.
 * @param {object} chat the chat state
 * @param {object} record one of chat.records
 * @param {object} changes fields to set
 * @param {boolean} [keep=false] save the records too
 * @returns {void}
 */
export function update(chat, record, changes, keep = false) {
  const stick = nearBottom(chat);
  Object.assign(record, changes);
  nodeOf(chat, record);
  if (stick) scrollToEnd(chat);
  if (keep) persist(chat);
}
