/**
 * The card's workflow buttons: Continue (the track plus the form's duration more), Regenerate from here (the
 * player's position, set by a click on the waveform: the audio before it is kept), Use as melody and Send to
 * continuation (the form then names the track instead of an upload: `workflow:track-ref`).
 * @module tracks-workflow
 */
import { emit } from "./bus.js";
import { $, delegate, formatTime } from "./dom.js";
import { translate } from "./i18n.js";

/** The audio kept before a regeneration, and after it, at least this many seconds. */
const MARGIN_S = 0.5;

/**
 * Wire the workflow buttons of the track card.
 * @param {{card: HTMLElement, current: object|null}} view the card's state (tracks.js)
 * @param {() => object} settings the form's `submit_sliders` fields (settings.getSettings)
 * @returns {void}
 */
export function initTrackWorkflow(view, settings) {
  const audio = $("[data-role=player-audio]", view.card);
  const regenerate = $("[data-workflow=regenerate]", view.card);
  const showPosition = () => {
    const at = audio.currentTime;
    const usable = Number.isFinite(audio.duration) && at >= MARGIN_S && at <= audio.duration - MARGIN_S;
    regenerate.disabled = !usable || !view.current;
    regenerate.dataset.at = at.toFixed(2);
    translate(regenerate, "track.regenerate", { time: formatTime(at) });
  };
  for (const type of ["timeupdate", "seeked", "loadedmetadata", "emptied"]) audio.addEventListener(type, showPosition);
  delegate(view.card, "click", "[data-workflow]", (event, button) => {
    if (view.current) act(view.current, button.dataset.workflow, Number(regenerate.dataset.at), settings);
  });
  showPosition();
}

function act(track, action, at, settings) {
  if (action === "continue") submit(track, settings(), { continue_track: track.name });
  else if (action === "regenerate") submit(track, settings(), { continue_track: track.name, cut_at: Math.round(at * 100) / 100 });
  else if (action === "melody") emit("workflow:track-ref", { ref: "melody_track", name: track.name });
  else if (action === "continuation") emit("workflow:track-ref", { ref: "continue_track", name: track.name });
}

/** Queue a job on this track with the form's settings, its own prompt, and nothing else setting the length. */
function submit(track, settings, fields) {
  const prompt = track.meta?.prompt ?? "";
  emit("job:submit", {
    text: prompt, // one job, whatever the prompt-list switch says
    payload: { ...settings, prompt_list: undefined, prompt, loop: null, bars: null, segments: [], appendContinuation: false, continuation: null, ...fields },
  });
}
