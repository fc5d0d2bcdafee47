/**
 * The queue panel: the running job and the waiting ones from the server's `queue_state` snapshot
 * (the same in every tab), live progress of the running job, a Cancel button per job (`job:cancel`) and a
 * Listen button per generation (`live:watch`), hidden for the one this tab already listens to.
 * @module queue
 */
import { emit, on } from "./bus.js";
import { $, $$, delegate } from "./dom.js";
import { translate } from "./i18n.js";
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
  const markListening = () => {
    for (const button of $$("[data-action=listen-job]", list)) button.hidden = button.dataset.jobId === listening;
  };
  on("queue_state", (snapshot) => {
    const jobs = [snapshot.running, ...(snapshot.queued ?? [])].filter(Boolean);
    list.replaceChildren(...jobs.map((job, index) => queueItemNode(job, snapshot.running ? index : index + 1)));
    markListening();
    panel.dataset.state = jobs.length ? "busy" : "empty";
    translate(count, "queue.count", { count: jobs.length });
  });
  on("live:changed", ({ jobId }) => {
    listening = jobId;
    markListening();
  });
  for (const event of ["progress", "stem_progress", "demucs_any_progress"]) {
    on(event, ({ job_id: jobId, progress }) => {
      const percent = $(`[data-role=queue-item][data-job-id="${CSS.escape(String(jobId))}"] [data-role=queue-percent]`, list);
      if (percent) percent.textContent = ` ${Math.round(progress * 100)}%`;
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
