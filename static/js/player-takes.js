/**
 * The takes of a group (`variations`) in the player: one button per take (A, B ...), the shown one pressed.
 * Switching asks for the other take with `keepPosition`, so the player goes on at the same second (A/B listening).
 * @module player-takes
 */
import { emit } from "./bus.js";
import { $, delegate, el } from "./dom.js";
import { takeLetter } from "./render.js";

/**
 * Wire the takes bar of the player.
 * @param {HTMLElement} box the player region
 * @returns {{bar: HTMLElement, takes: object[]}}
 */
export function initTakes(box) {
  const state = { bar: $("[data-role=player-takes]", box), takes: [] };
  delegate(state.bar, "click", "[data-take]", (event, button) => {
    const take = state.takes[Number(button.dataset.take)];
    if (take && button.getAttribute("aria-pressed") !== "true") {
      emit("track:open", { name: take.track, audio: take.audio, json: take.json, takes: state.takes, keepPosition: true });
    }
  });
  return state;
}

/**
 * Show the takes of the track now in the player: those the track came with, or the group's kept while it stays in it.
 * @param {{bar: HTMLElement, takes: object[]}} state
 * @param {{name: string, takes?: object[], meta?: object}} track
 * @returns {void}
 */
export function showTakes(state, track) {
  const inGroup = state.takes.some((take) => take.track === track.name);
  state.takes = track.takes?.length > 1 ? track.takes : inGroup ? state.takes : [];
  state.bar.hidden = state.takes.length < 2;
  state.bar.replaceChildren(...state.takes.map((take, index) => el("button", {
    className: "small take", text: takeLetter(index),
    attrs: { type: "button", "aria-pressed": String(take.track === track.name), title: `seed ${take.seed}` },
    data: { take: String(index) },
  })));
}

/**
 * Go on at the same position after a switch of takes (and keep playing if it was).
 * @param {HTMLAudioElement} audio the player's audio, its new source set
 * @param {{time: number, playing: boolean}} keep where the previous take was
 * @returns {void}
 */
export function resumeAt(audio, keep) {
  audio.addEventListener("loadedmetadata", () => {
    audio.currentTime = Math.min(keep.time, Number.isFinite(audio.duration) ? audio.duration : keep.time);
    if (keep.playing) audio.play().catch(() => {});
  }, { once: true });
}
