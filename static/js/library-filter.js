/**
 * The library's search, filters and sort, done in the page on the track list it holds (the same rules as the
 * server's `GET /api/tracks` query): words of the prompt (all of them, any case), model, format, favourite,
 * locked, part of the artist, seed, a day range on the creation time, sort by date or name. Pure functions:
 * each track is indexed once, so a filter over a thousand tracks is a few comparisons each.
 * @module library-filter
 */
import { localStamp } from "./dom.js";

/**
 * @typedef {object} LibraryEntry
 * @property {object} track the track as `GET /api/tracks` lists it (`{name, audio, json, meta, mtime}`)
 * @property {string} prompt the prompt, lower case
 * @property {string} name the name, lower case
 * @property {string} model
 * @property {string} format the audio file's extension
 * @property {boolean} favorite
 * @property {boolean} locked
 * @property {string} artist lower case
 * @property {number|null} seed
 * @property {string} created local `2025-08-19T14:05:31` (the record's, else the file's time)
 */

/**
 * Index a track for filtering.
 * @param {{name: string, audio: string, meta?: object, mtime?: number}} track
 * @returns {LibraryEntry}
 */
export function indexTrack(track) {
  const meta = track.meta ?? {};
  const params = meta.parameters ?? {};
  const created = typeof meta.created === "string" && meta.created
    ? meta.created
    : localStamp(new Date((track.mtime ?? 0) * 1000), true).replace(" ", "T");
  return {
    track,
    prompt: String(meta.prompt ?? "").toLowerCase(),
    name: String(track.name).toLowerCase(),
    model: String(meta.model ?? ""),
    format: String(track.audio ?? "").split(".").pop().toLowerCase(),
    favorite: meta.favorite === true,
    locked: meta.locked === true,
    artist: String(params.artist ?? "").toLowerCase(),
    seed: Number.isInteger(params.seed) ? params.seed : null,
    created,
  };
}

/**
 * The filters of the library's form, made ready to compare (empty ones are left out).
 * @param {{q?: string, model?: string, format?: string, favorite?: boolean, locked?: boolean, artist?: string,
 *   seed?: string, since?: string, until?: string, sort?: string}} values `sort` is `date-desc`, `name-asc` ...
 * @returns {object}
 */
export function parseFilters(values) {
  const [sort, order] = String(values.sort || "date-desc").split("-");
  const seed = String(values.seed ?? "").trim();
  return {
    words: String(values.q ?? "").toLowerCase().split(/\s+/).filter(Boolean),
    model: values.model || null,
    format: values.format || null,
    favorite: values.favorite === true ? true : null,
    locked: values.locked === true ? true : null,
    artist: String(values.artist ?? "").trim().toLowerCase() || null,
    seed: /^\d+$/.test(seed) ? Number(seed) : null,
    since: values.since || null,
    until: values.until || null,
    sort: sort === "name" ? "name" : "date",
    descending: order !== "asc",
  };
}

/**
 * Whether an entry passes every filter.
 * @param {LibraryEntry} entry
 * @param {object} filters from parseFilters
 * @returns {boolean}
 */
export function matches(entry, filters) {
  const day = entry.created.slice(0, 10);
  return filters.words.every((word) => entry.prompt.includes(word))
    && (filters.model === null || entry.model === filters.model)
    && (filters.format === null || entry.format === filters.format)
    && (filters.favorite === null || entry.favorite === filters.favorite)
    && (filters.locked === null || entry.locked === filters.locked)
    && (filters.artist === null || entry.artist.includes(filters.artist))
    && (filters.seed === null || entry.seed === filters.seed)
    && (filters.since === null || day >= filters.since)
    && (filters.until === null || day <= filters.until);
}

/**
 * The entries that pass, sorted (by date: creation time, then the file's time; by name: case-insensitive).
 * @param {LibraryEntry[]} entries
 * @param {object} filters from parseFilters
 * @returns {LibraryEntry[]}
 */
export function selectTracks(entries, filters) {
  const found = entries.filter((entry) => matches(entry, filters));
  const key = filters.sort === "name"
    ? (a, b) => compare(a.name, b.name)
    : (a, b) => compare(a.created, b.created) || (a.track.mtime ?? 0) - (b.track.mtime ?? 0);
  const sign = filters.descending ? -1 : 1;
  return found.sort((a, b) => sign * key(a, b));
}

function compare(a, b) {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}
