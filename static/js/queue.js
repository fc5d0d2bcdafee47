/**
 * The queue panel: the running job and the waiting ones from the server's `queue_state` snapshot
 * (the same in every tab), live progress and phase of the running job, a Cancel button on the jobs this page
 * may cancel (its own, or all of them for the server's local user, from the `session` event) and a Listen
 * button per generation that makes a preview (`live:watch`), hidden for the one this tab already listens to.
 * @module queue
 */
import { emit, on } from "./bus.js";
import { $, $$, delegate } from "./dom.js";
import { hasKey, translate } from "./i18n.js";
import { queueItemNode } from "./render.js";
import { request } from "./socket.js";

/**
 * Wire the queue panel.
 * @param {ParentNode} root the page
 * @returns {void}
 */
export function initQueue(root) {
  const panel = $("[data-role=queue]", root);
  const list = $("[data-role=queue-list]", panel);
  const count = $("[data-role=queue-count]", panel);
  let listening = null;
  let session = { owner: null, cancel_any: true };
  const markListening = () => {
    for (const button of $$("[data-action=listen-job]", list)) button.hidden = button.dataset.jobId === listening;
  };
  let last = null;
  const render = (snapshot) => {
    last = snapshot;
    const jobs = [snapshot.running, ...(snapshot.queued ?? [])].filter(Boolean);
    const mayCancel = (job) => session.cancel_any || (job.owner != null && job.owner === session.owner);
    list.replaceChildren(...jobs.map((job, index) => queueItemNode(job, snapshot.running ? index : index + 1, mayCancel(job))));
    markListening();
    panel.dataset.state = jobs.length ? "busy" : "empty";
    translate(count, "queue.count", { count: jobs.length });
  };
  on("queue_state", render);
  on("session", (info) => {
    session = info;
    if (last) render(last);
  });
  on("live:changed", ({ jobId }) => {
    listening = jobId;
    markListening();
  });
  for (const event of ["progress", "stem_progress", "demucs_any_progress"]) {
    on(event, ({ job_id: jobId, progress, phase }) => {
      const item = $(`[data-role=queue-item][data-job-id="${CSS.escape(String(jobId))}"]`, list);
      const percent = item && $("[data-role=queue-percent]", item);
      if (percent) percent.textContent = ` ${Math.round(progress * 100)}%`;
      const label = item && $("[data-role=queue-phase]", item);
      if (label && phase) translate(label, hasKey(`phase.${phase}`) ? `phase.${phase}` : "phase.working");
    });
  }
  delegate(list, "click", "[data-action=listen-job]", (event, button) => emit("live:watch", { jobId: button.dataset.jobId }));
  delegate(list, "click", "[data-action=cancel-queued]", async (event, button) => {
    button.disabled = true;
    emit("job:cancel", { jobId: button.dataset.jobId });
    const ack = await request("cancel_job", { job_id: button.dataset.jobId });
    if (!ack.ok) emit("toast:show", { key: "toast.cancel_failed", kind: "error" });
  });
}
