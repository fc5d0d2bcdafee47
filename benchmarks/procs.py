"""The processes the benchmark drives: the real ``webui.py`` server with a Socket.IO client, the direct
baseline process, and what ``/proc`` says about them (RSS, peak RSS, CPU time).
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from audiocraft_webui.config import REPO_ROOT

from .hubs import offline_env

#: Seconds a server may take to answer ``GET /`` after it was started.
START_TIMEOUT = 120.0
#: Seconds one job may take, model load included (real-size models on a slow, shared CPU).
JOB_TIMEOUT = 900.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_KIB = 1024


class BenchError(RuntimeError):
    """A benchmark step could not be measured (a job failed, a process died); the message says which."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    """``{"rss": VmRSS, "peak": VmHWM}`` of a process in MB, from ``/proc/<pid>/status``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / _KIB
    return {"rss": fields["VmRSS"], "peak": fields["VmHWM"]}


def worker_pids(pid: int) -> list[int]:
    """The worker process(es) a server started (its ``multiprocessing`` spawn children, not its resource tracker)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(child) for child in task.read_text().split()]
    workers = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            continue
    return workers


def app_memory_mb(pid: int) -> dict[str, float]:
    """RSS and peak RSS of a server and its worker process together (the peaks added: an upper bound)."""
    total = {"rss": 0.0, "peak": 0.0}
    for process in (pid, *worker_pids(pid)):
        with contextlib.suppress(OSError, KeyError):
            for key, value in memory_mb(process).items():
                total[key] += value
    return total


def app_cpu_seconds(pid: int) -> float:
    """CPU seconds of a server and its worker process together: the app's whole cost, wherever it ran."""
    total = 0.0
    for process in (pid, *worker_pids(pid)):
        with contextlib.suppress(OSError):
            total += cpu_seconds(process)
    return total


def reset_app_peak(pid: int) -> bool:
    """Reset the peak RSS of a server and its worker; False where the kernel does not allow it."""
    return all([reset_peak(process) for process in (pid, *worker_pids(pid))])


def reset_peak(pid: int) -> bool:
    """Reset a process's peak RSS (VmHWM) to its current RSS; False where the kernel does not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a whole process (every thread), from ``/proc/<pid>/stat``."""
    return _cpu_ticks(Path(f"/proc/{pid}/stat")) / _CLOCK_TICKS


def _cpu_ticks(stat: Path) -> int:
    """User plus system clock ticks from a ``/proc`` ``stat`` file (of a process or of one thread)."""
    text = stat.read_text()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def _thread_ids(pid: int) -> list[int]:
    """The ids of a process's threads now (some may end before the caller reaches them)."""
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def busiest_thread(pid: int) -> int:
    """The thread of a process that has used the most CPU time (a server's worker, once it has generated)."""
    used = {}
    for tid in _thread_ids(pid):
        try:
            used[tid] = _cpu_ticks(Path(f"/proc/{pid}/task/{tid}/stat"))
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return max(used, key=used.__getitem__)


def set_affinity(pid: int, cpus: set[int]) -> None:
    """Let every thread of a process run on ``cpus`` only (threads it starts later inherit their starter's set)."""
    for tid in _thread_ids(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            continue


def get_status(port: int, path: str = "/") -> int:
    """HTTP status of ``GET path`` on the loopback server."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def finish(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait for a child that was asked to exit; kill it if it does not within ``timeout`` seconds."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def answer_channel() -> IO[str]:
    """A child process's own copy of stdout for its answers; the libraries' prints on fd 1 go to stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return answers


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Server:
    """One ``webui.py`` process on a free loopback port, started on an offline hub.

    Its decode loop is the product's default (``--decoder auto``), as is the direct process's engine, so a
    ratio measures the app's own cost; the ``decoders`` scenario compares the loops themselves.
    """

    def __init__(self, hub: Path, data_dir: Path, log: Path, *, device: str, threads: int,
                 flags: tuple[str, ...] = ()) -> None:
        self.hub = hub
        self.data_dir = data_dir
        self.log = log
        self.command = [sys.executable, "webui.py", "--data-dir", str(data_dir), "--device", device,
                        "--threads", str(threads), "--log-level", "WARNING", *flags]
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def start(self) -> float:
        """Start the server and wait until ``GET /`` answers 200.

        Returns:
            Seconds from spawning the process to the first 200.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            started = time.perf_counter()
            self.process = subprocess.Popen([*self.command, "--port", str(self.port)], cwd=REPO_ROOT,
                                            env=offline_env(self.hub), stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT)
        deadline = started + START_TIMEOUT
        while True:
            try:
                if get_status(self.port) == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            if self.process.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                raise BenchError(f"webui.py did not start:\n{log_tail(self.log)}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Terminate the server."""
        if self.process is not None:
            self.process.terminate()
            finish(self.process)


@dataclass(frozen=True)
class JobTiming:
    """One job through the app, timed by the client.

    Attributes:
        wall: seconds from emitting the request to receiving the job's terminal event.
        first_progress: seconds from emitting the request to the job's first progress event.
        ack: seconds from emitting the request to its acknowledgement.
        server_cpu: CPU seconds the server and its worker process spent meanwhile (every thread).
        result: the terminal event's payload.
        phases: seconds from emitting the request to the first progress event of each phase.
        first_preview: seconds from emitting the request to the job's first ``audio_preview`` (None: none came).
    """

    wall: float
    first_progress: float
    ack: float
    server_cpu: float
    result: dict
    phases: dict[str, float]
    first_preview: float | None = None

    def span(self, start: str, end: str) -> float | None:
        """Seconds from the start of phase ``start`` to the start of phase ``end`` (None if one is missing)."""
        if start not in self.phases or end not in self.phases:
            return None
        return self.phases[end] - self.phases[start]


class AppClient:
    """A real python-socketio client on the websocket transport, recording every event with its arrival time."""

    def __init__(self, server: Server) -> None:
        import socketio

        self.server = server
        self._events: dict[str, list[tuple[float, str, dict]]] = defaultdict(list)
        self._cond = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record)
        self.sio.connect(server.url, transports=["websocket"], wait_timeout=30)
        if self.sio.transport() != "websocket":
            raise BenchError(f"the client fell back to {self.sio.transport()}; install simple-websocket")

    def _record(self, event: str, *args: object) -> None:
        """Keep a job's events by job id, with the time they arrived."""
        received = time.perf_counter()
        payload = args[0] if args else None
        if isinstance(payload, dict) and isinstance(payload.get("job_id"), str):
            with self._cond:
                self._events[payload["job_id"]].append((received, event, payload))
                self._cond.notify_all()

    def run_job(self, event: str, payload: dict, terminal: str, progress: str) -> JobTiming:
        """Submit one job, wait for its terminal event and time it.

        Raises:
            BenchError: the request was refused, the job did not finish in time, or it did not succeed.
        """
        pid = self.server.pid
        cpu_before = app_cpu_seconds(pid)
        started = time.perf_counter()
        ack = self.sio.call(event, payload, timeout=60)
        acked = time.perf_counter()
        if not isinstance(ack, dict) or not ack.get("ok"):
            raise BenchError(f"{event} was refused: {ack}")
        job_id = ack["job_id"]
        with self._cond:
            if not self._cond.wait_for(lambda: self._find(job_id, terminal) is not None, JOB_TIMEOUT):
                raise BenchError(f"job {job_id} did not finish within {JOB_TIMEOUT:.0f} s")
            finished, result = self._find(job_id, terminal)
            first = self._find(job_id, progress)
            preview = self._find(job_id, "audio_preview")
        server_cpu = app_cpu_seconds(pid) - cpu_before
        if result.get("state") != "done":
            raise BenchError(f"job {job_id} ended {result.get('state')}: {result.get('error')}\n"
                             f"{log_tail(self.server.log)}")
        return JobTiming(wall=finished - started, first_progress=(first[0] if first else finished) - started,
                         ack=acked - started, server_cpu=server_cpu, result=result,
                         phases=self._phases(job_id, progress, started),
                         first_preview=preview[0] - started if preview else None)

    def _phases(self, job_id: str, progress: str, started: float) -> dict[str, float]:
        """When each phase of a job was first reported, in seconds after ``started``."""
        phases: dict[str, float] = {}
        with self._cond:
            for received, name, payload in self._events.get(job_id, ()):
                if name == progress and isinstance(payload.get("phase"), str):
                    phases.setdefault(payload["phase"], received - started)
        return phases

    def _find(self, job_id: str, event: str) -> tuple[float, dict] | None:
        """The first ``event`` of a job received so far (caller holds the condition)."""
        for received, name, payload in self._events.get(job_id, ()):
            if name == event:
                return received, payload
        return None

    def upload(self, path: Path, route: str = "/upload_demucs_any") -> str:
        """Upload an audio file through the app's upload route; returns its upload id."""
        import requests

        with path.open("rb") as handle:
            answer = requests.post(self.server.url + route, files={"file": (path.name, handle, "audio/wav")},
                                   timeout=60)
        data = answer.json()
        if not data.get("ok"):
            raise BenchError(f"upload refused: {data}")
        return str(data["id"])

    def close(self) -> None:
        """Disconnect."""
        self.sio.disconnect()


class DirectProcess:
    """The direct baseline (``python -m benchmarks.direct``) as a long-lived child process."""

    def __init__(self, hub: Path, log: Path, *, device: str, threads: int) -> None:
        self.log = log
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.direct", "--device", device, "--threads",
                 str(threads)], cwd=REPO_ROOT, env=offline_env(hub), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, text=True)

    def call(self, request: dict) -> dict:
        """Send one request and wait for its answer (``seconds``, ``cpu_seconds``).

        Raises:
            BenchError: the request failed or the process died.
        """
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"the direct process died:\n{log_tail(self.log)}")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"direct {request['op']} failed: {answer['error']}")
        return answer

    def close(self) -> None:
        """Close its stdin, which ends it."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        finish(self.process)


def timed_process(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run a command to completion; returns seconds from spawn to exit.

    Raises:
        BenchError: it exited with an error.
    """
    with log.open("ab") as out:
        started = time.perf_counter()
        code = subprocess.call(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT)
        elapsed = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"{' '.join(command[:4])} … exited {code}:\n{log_tail(log)}")
    return elapsed
