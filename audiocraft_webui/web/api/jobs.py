"""REST API routes of the queue: submit a generation, read, list and cancel jobs, follow one as Server-Sent Events.

A job submitted here goes through the same validation, queue and emitter as one from the page, so every
open page sees it in its queue and history.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response, current_app, jsonify, stream_with_context

from ... import protocol
from ...fanout import Subscription, TooManySubscriptions
from ...fileio import disk_error
from ...jobs import Job, JobState, QueueFull
from ...tasks import GenerateTask
from ..clients import CLIENTS_KEY
from .base import STATUS_OF_KIND, ApiError, caller, json_body, services, spec
from .schemas import CancelAnswer, GenerationBody, JobCreated, JobList, JobView

#: Seconds between two comments on a quiet event stream: a client that has gone is noticed at the next one.
KEEPALIVE_SECONDS = 10.0
ACTIVE = (JobState.QUEUED, JobState.RUNNING)


def take_view(result: dict) -> dict:
    """A track a generation made, with its URLs."""
    return {"name": result["name"], "audio_url": "/" + result["filename"], "json_url": "/" + result["json_filename"],
            "seed": result["seed"]}


def result_view(job: dict, meta: bool) -> dict | None:
    """A job's result as the API shows it: a generation's track with its URLs (and record), or a split's stems."""
    result = job.get("result")
    if not result:
        return None
    if job["kind"] == GenerateTask.kind:
        view = {**take_view(result), "meta": result.get("meta") if meta else None}
        if result.get("takes"):
            view["takes"] = [take_view(take) for take in result["takes"]]
        return view
    return {"name": result.get("name"), "id": result.get("id"), "target": result.get("target"),
            "stems": result.get("stems", [])}


def job_view(job: dict, position: int | None, meta: bool = True) -> dict:
    """A job (its ``Job.public`` description) as the API shows it; ``meta`` keeps a track's record in its result."""
    return {"job_id": job["id"], "kind": job["kind"], "label": job["label"], "state": job["state"],
            "progress": job["progress"], "phase": job["phase"], "position": position, "error": job["error"],
            "result": result_view(job, meta), "created": job["created"], "started": job["started"],
            "finished": job["finished"]}


def find(job_id: str) -> Job:
    """A job of the queue or its recent history, or a 404."""
    job = services().queue.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", "no such job in the queue or its recent history", "job_id")
    return job


def current(job: Job) -> dict:
    """A job's view now."""
    return job_view(job.public(), services().queue.position(job))


@spec.route("POST", "/generations", body=GenerationBody, responses={202: JobCreated}, errors=(422, 429))
def create_generation() -> tuple[Response, int]:
    """Queue a generation.

    The body is checked exactly like the page's `submit_sliders`: out-of-range numbers are clamped and listed
    in `clamped`; a model that is not on this machine while the hub cannot be reached is refused (422).
    """
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the request must be an object", "body")
    unknown = sorted(str(key) for key in body if key not in GenerationBody.model_fields)
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field {unknown[0][:40]!r}", unknown[0][:40])
    svc = services()
    # The page sends an append switch with its clip; here naming a clip to continue is the switch.
    parsed = protocol.parse_generation_request({**body, "appendContinuation": bool(body.get("continuation"))},
                                               svc.catalog)
    svc.check_available(parsed)
    try:
        job, position = svc.enqueue_generation(parsed, None, caller().owner)
    except QueueFull as exc:
        raise ApiError(429, "queue_full", str(exc)) from None
    except OSError as exc:
        error = disk_error(exc) or {"type": "disk_error", "message": exc.strerror or "cannot write"}
        raise ApiError(STATUS_OF_KIND.get(error["type"], 500), error["type"], error["message"]) from None
    assert isinstance(job.task, GenerateTask), "a generation job"
    answer = jsonify({"job_id": job.id, "position": position, "seed": job.task.seed, "clamped": parsed.clamped})
    answer.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return answer, 202


@spec.route("GET", "/jobs", responses={200: JobList})
def list_jobs() -> Response:
    """The queue: the running job, the waiting ones in order and the recent history (without track records)."""
    snapshot = services().queue.snapshot()
    running = snapshot["running"]
    return jsonify({"running": job_view(running, 0) if running else None,
                    "queued": [job_view(job, place) for place, job in enumerate(snapshot["queued"], 1)],
                    "recent": [job_view(job, None, meta=False) for job in snapshot["recent"]],
                    "max": snapshot["max"]})


@spec.route("GET", "/jobs/<job_id>", responses={200: JobView}, errors=(404,))
def get_job(job_id: str) -> Response:
    """One job: its state, progress and phase, and when it is done its result (the track and its record)."""
    return jsonify(current(find(job_id)))


@spec.route("DELETE", "/jobs/<job_id>", responses={200: CancelAnswer}, errors=(404, 409))
def cancel_job(job_id: str) -> Response:
    """Cancel a job: a waiting one is removed, a running one stops at its next step and writes nothing.

    On a shared (`--listen`) server only jobs queued over the API can be cancelled here, unless the call comes
    from the server's own machine (403 `forbidden`); a job that is over is a 409.
    """
    job = find(job_id)
    if not current_app.extensions[CLIENTS_KEY].allows(caller(), job):
        raise ApiError(403, "forbidden", "only jobs queued over the API, or a call from the server's own machine, "
                                         "can cancel this job", "job_id")
    outcome = services().cancel_job(job_id)
    if outcome == "unknown":
        raise ApiError(409, "finished", f"this job is {job.state.value}", "job_id")
    return jsonify({"job_id": job_id, "outcome": outcome})


def sse(event: str, data: dict) -> str:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def stream(job: Job, subscription: Subscription, terminal: str) -> Iterator[str]:
    """The job's view, then its events as the socket sends them, then its final view; ends with the job.

    A comment goes out on a quiet stream, so a client that has gone is noticed (the write fails, the
    generator is closed and the subscription with it).
    """
    try:
        first = current(job)
        yield sse("job", first)
        if first["state"] not in ACTIVE:
            return
        while True:
            event = subscription.next(KEEPALIVE_SECONDS)
            if event is None:
                if job.state not in ACTIVE:  # its end went by unseen (a reader far behind): the view says it
                    break
                yield ": keepalive\n\n"
                continue
            yield sse(*event)
            if event[0] == terminal:
                break
        yield sse("job", current(job))
    finally:
        subscription.close()


@spec.route("GET", "/jobs/<job_id>/events", responses={200: "text/event-stream"}, errors=(404, 429))
def job_events(job_id: str) -> Response:
    """Follow a job as Server-Sent Events, until it ends.

    First a `job` event (the job as `GET /api/v1/jobs/{job_id}` shows it), then the events the page gets over
    Socket.IO, with the same names and data (`job_started`, `progress`, `stem_progress`, `on_finish_audio`,
    `postprocess_done` ...), and last a `job` event with the final state and result. A job already over gets
    its `job` event only.
    """
    svc = services()
    try:
        subscription = svc.emit.events.subscribe(job_id)  # before reading the job, so no event falls between
    except TooManySubscriptions as exc:
        raise ApiError(429, "too_many_streams", str(exc)) from None
    try:
        job = find(job_id)
    except ApiError:
        subscription.close()
        raise
    terminal = svc.worker.kinds[job.kind].terminal_event
    return Response(stream_with_context(stream(job, subscription, terminal)), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
