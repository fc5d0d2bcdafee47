"""The job queue: FIFO order, a cap, cancel, JSON snapshots and restoring after a crash."""
from __future__ import annotations

import json

import pytest

from audiocraft_webui.jobs import Job, JobQueue, JobState, QueueFull
from audiocraft_webui.tasks import TrackSplitTask


def make_job(label: str = "x") -> Job:
    """A small job labelled ``label`` (a stem split of a track of that name)."""
    return Job(TrackSplitTask(label, "all"))


def test_fifo_order_and_positions():
    queue = JobQueue(maxsize=5)
    jobs = [make_job(str(i)) for i in range(3)]
    assert [queue.submit(job) for job in jobs] == [1, 2, 3]
    assert [queue.take(0).label for _ in jobs] == ["0", "1", "2"]
    assert queue.take(0.01) is None


def test_queue_cap_refuses_extra_jobs_with_a_message():
    queue = JobQueue(maxsize=2)
    queue.submit(make_job())
    queue.submit(make_job())
    with pytest.raises(QueueFull, match="queue is full"):
        queue.submit(make_job())


def test_cancel_removes_queued_and_signals_running():
    queue = JobQueue()
    running, waiting = make_job("run"), make_job("wait")
    queue.submit(running)
    queue.submit(waiting)
    assert queue.take(0) is running
    assert queue.cancel(waiting.id) == "removed" and waiting.state is JobState.CANCELLED
    assert queue.cancel(running.id) == "cancelling" and running.cancel_event.is_set()
    assert queue.cancel("nope") == "unknown"
    assert queue.pending_count() == 0


def test_snapshot_is_json_and_lists_everything():
    queue = JobQueue()
    first, second = make_job("a"), make_job("b")
    queue.submit(first)
    queue.submit(second)
    queue.take(0)
    snapshot = json.loads(json.dumps(queue.snapshot()))
    assert snapshot["running"]["id"] == first.id and snapshot["running"]["state"] == "running"
    assert [job["id"] for job in snapshot["queued"]] == [second.id]
    queue.finish(first, JobState.DONE, result={"name": "t"})
    assert queue.snapshot()["recent"][0]["result"] == {"name": "t"}


def test_restart_requeues_pending_and_marks_running_interrupted(tmp_path):
    state = tmp_path / "jobs.json"
    before = JobQueue(state_file=state)
    running, waiting = make_job("run"), make_job("wait")
    before.submit(running)
    before.submit(waiting)
    before.take(0)
    # The process dies here: a new queue reads the file.
    after = JobQueue(state_file=state)
    interrupted = after.restore()
    assert [job.id for job in interrupted] == [running.id]
    assert interrupted[0].state is JobState.INTERRUPTED and interrupted[0].error["type"] == "interrupted"
    snapshot = after.snapshot()
    assert snapshot["running"] is None
    assert [job["id"] for job in snapshot["queued"]] == [waiting.id]
    assert snapshot["recent"][0]["state"] == "interrupted"
    resumed = after.take(0)
    assert resumed.task == TrackSplitTask("wait", "all")
    after.finish(resumed, JobState.DONE)
    # A second restart does not report the interrupted job again nor re-queue anything.
    again = JobQueue(state_file=state)
    assert again.restore() == []
    assert again.pending_count() == 0


def test_restore_ignores_a_missing_or_corrupt_file(tmp_path):
    state = tmp_path / "jobs.json"
    assert JobQueue(state_file=state).restore() == []
    state.write_text("{not json")
    assert JobQueue(state_file=state).restore() == []


def test_the_queue_file_keeps_results_without_the_track_json(tmp_path):
    state = tmp_path / "jobs.json"
    queue = JobQueue(state_file=state)
    job = make_job()
    queue.submit(job)
    queue.take(0)
    queue.finish(job, JobState.DONE, result={"name": "t", "meta": {"waveform": [0.5] * 600}})
    stored = json.loads(state.read_text())["recent"][0]
    assert stored["result"] == {"name": "t"} and stored["payload"] == job.task.as_json()
    assert queue.snapshot()["recent"][0]["result"]["meta"]["waveform"][0] == 0.5
