"""Demucs stem separation, in process, on the one GPU worker: splitter, stem folders, and the two stem jobs.

* :class:`DemucsSplitter` loads a Demucs model once (``htdemucs`` by default, ``DEMUCS_MODEL`` /
  ``--demucs-model``) through ``demucs.api.Separator`` and keeps it until ``--unload-after-gen`` asks for
  it to be dropped after every job. Progress comes from Demucs' own per-chunk callback.
* :class:`StemFolders` is one folder of stem sets (``static/stems/<track>/`` or ``static/stems_any/<id>/``).
  A set is written into ``.tmp-<key>-*/`` and renamed into place only when every stem is complete, so
  a crash or a failure never leaves a partial set (security.md, "nothing lost" 2).
* :class:`StemService` queues and runs the job kinds ``stems`` (split a track; the track JSON follows
  the task through queued -> running -> done | failed) and ``demucs_any`` (split an uploaded file).

Audio crosses these functions as float32 ``[C, T]`` with its sample rate; stems come out at the model's
rate (44.1 kHz for htdemucs) and are written as 16-bit PCM WAV.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from . import postprocess, protocol
from .fileio import TMP_PREFIX, fsync_dir
from .heap import release_memory
from .jobs import Job, JobQueue, JobState, QueueFull
from .protocol import RequestError
from .storage import TRASH_PREFIX, TrackStore, UnsafeName, remove_tree, safe_child
from .uploads import UploadStore
from .worker import Emit, JobCancelled, Progress, error_info

if TYPE_CHECKING:  # demucs and torch are imported on first use only
    from demucs.api import Separator
    from demucs.apply import BagOfModels, Model

log = logging.getLogger(__name__)

TASK = "stem_split"
STEMS_KIND = "stems"
ANY_KIND = "demucs_any"
#: The order stems are listed in; sources a model adds beyond these (guitar, piano) follow by name.
STEM_ORDER = ("vocals", "drums", "bass", "other")
#: The targets a split may ask for ("" = none is only meaningful at submit time).
TARGETS = tuple(target for target in protocol.STEM_TARGETS if target)
LIVE_STATES = (JobState.QUEUED, JobState.RUNNING)

ProgressCallback = Callable[[float], None]


class StemError(RuntimeError):
    """A stem job that cannot finish (track or upload gone, model without the requested stem)."""


class StemRequestError(RequestError):
    """A refused ``request_stems`` / ``demucs_any``; ``kind`` tells the UI why (not_found, busy ...)."""

    def __init__(self, kind: str, field_name: str, message: str) -> None:
        super().__init__(field_name, message)
        self.kind = kind

    def as_json(self) -> dict:
        """The error as sent to the browser."""
        return {**super().as_json(), "type": self.kind}


# ---------------------------------------------------------------------------------------------------------
# Splitter
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Separation:
    """The sources of one mix: name -> float32 ``[C, T]``, all at ``sample_rate`` Hz and of equal length."""

    stems: dict[str, np.ndarray]
    sample_rate: int


class Splitter(Protocol):
    """What the stem jobs need from a source-separation backend."""

    model_name: str

    def load(self) -> None:
        """Load the model unless it is loaded already (slow the first time: it may download)."""

    def separate(self, audio: np.ndarray, sample_rate: int, on_progress: ProgressCallback) -> Separation:
        """Split float32 ``[C, T]`` audio at ``sample_rate``; ``on_progress(0..1)`` may raise to cancel."""

    def unload(self) -> None:
        """Drop the model and give its memory back."""


class DemucsSplitter:
    """Demucs through ``demucs.api.Separator``, loaded on first use and cached between jobs.

    Args:
        model: a Demucs model name (``htdemucs``, ``htdemucs_ft``, ``htdemucs_6s``, ``mdx_extra`` ...).
        device: ``auto`` (cuda, then mps, then cpu) or an explicit torch device, as for generation.
        shifts: random-shift passes averaged together (Demucs' own default is 1; each one costs a pass).
        overlap: overlap between the model's segments (0.25 as in Demucs; 0.1 is faster).
        split: cut the input into model-sized segments (needed for anything longer than one segment).
    """

    def __init__(self, model: str = "htdemucs", device: str = "auto", shifts: int = 1, overlap: float = 0.25,
                 split: bool = True) -> None:
        self.model_name = model
        self._requested_device = device
        self._device: str | None = None
        self.shifts = shifts
        self.overlap = overlap
        self.split = split
        self._separator = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model on the chosen device (once)."""
        self._get()

    def _get(self) -> Separator:
        """The cached ``demucs.api.Separator``, with its model moved to the device once."""
        with self._lock:
            if self._separator is None:
                from demucs.api import Separator

                from .engines.audiocraft_musicgen import pick_device

                self._device = pick_device(self._requested_device)
                started = time.perf_counter()
                try:
                    separator = Separator(model=self.model_name, device=self._device, shifts=self.shifts,
                                          overlap=self.overlap, split=self.split, progress=False)
                except Exception as exc:
                    raise StemError(f"could not load the Demucs model {self.model_name!r}: {exc}. Check "
                                    "the name (--demucs-model) and, on first use, the network") from exc
                # A bag moves each sub-model to the device and back on every call unless it lives there.
                separator.model.to(self._device)
                self._separator = separator
                log.info("loaded Demucs %s on %s in %.1f s", self.model_name, self._device,
                         time.perf_counter() - started)
            return self._separator

    def separate(self, audio: np.ndarray, sample_rate: int, on_progress: ProgressCallback) -> Separation:
        """Resample to the model rate (soxr), match its channels and separate.

        Args:
            audio: float32 ``[C, T]`` at ``sample_rate`` Hz.
            sample_rate: Hz.
            on_progress: called with the fraction done after every chunk; may raise to cancel.
        Returns:
            One float32 ``[model channels, T']`` array per model source, at the model's rate.
        """
        import torch
        from demucs.audio import convert_audio_channels

        separator = self._get()
        at_model_rate = postprocess.resample(audio, sample_rate, separator.samplerate)
        wav = convert_audio_channels(torch.from_numpy(at_model_rate), separator.audio_channels)
        tracker = ChunkProgress(separator.model, self.shifts, self.overlap, self.split, on_progress)
        separator.update_parameter(callback=tracker)
        try:
            _, sources = separator.separate_tensor(wav.contiguous())
        finally:
            separator.update_parameter(callback=None)
        stems = {name: source.detach().cpu().numpy().astype(np.float32) for name, source in sources.items()}
        return Separation(stems, int(separator.samplerate))

    def unload(self) -> None:
        """Drop the model, give its memory back to the system and empty the accelerator cache."""
        with self._lock:
            if self._separator is None:
                return
            self._separator = None
        release_memory(self._device)
        log.info("unloaded Demucs %s", self.model_name)


class ChunkProgress:
    """Turn Demucs' per-chunk callback into the overall fraction done, across bag models and shifts.

    Demucs calls back with ``state`` start/end for every chunk, plus ``model_idx_in_bag``, ``shift_idx``,
    ``segment_offset`` (in samples) and ``audio_length``. A pass (one model, one shift) is done when
    its last chunk ends; a chunk at ``offset`` ends at about ``offset + stride`` samples.
    """

    def __init__(self, model: BagOfModels | Model, shifts: int, overlap: float, split: bool,
                 on_progress: ProgressCallback) -> None:
        self._models = list(getattr(model, "models", [model]))
        self._shifts = max(1, shifts)
        self._overlap = overlap
        self._split = split
        self._rate = int(model.samplerate)
        self._on_progress = on_progress

    def _stride(self, model_index: int, length: int) -> int:
        """Samples between the starts of two chunks of one pass (the whole input when not split)."""
        segment = getattr(self._models[min(model_index, len(self._models) - 1)], "segment", None)
        if not self._split or not segment:
            return length
        return max(1, int((1 - self._overlap) * int(self._rate * float(segment))))

    def __call__(self, info: dict) -> None:
        """Report the fraction done when a chunk ends."""
        if info.get("state") != "end":
            return
        length = max(1, int(info["audio_length"]))
        model_index = int(info.get("model_idx_in_bag", 0))
        within = min(1.0, (int(info["segment_offset"]) + self._stride(model_index, length)) / length)
        done = model_index * self._shifts + int(info.get("shift_idx", 0)) + within
        self._on_progress(done / (len(self._models) * self._shifts))


def select_stems(separation: Separation, target: str) -> dict[str, np.ndarray]:
    """The stems to write for a target: every source for ``all``, else the source and ``no_<source>``.

    ``no_<source>`` is the sum of the other sources (Demucs' ``--two-stems`` "add" mode). When any stem
    would clip, all of them are scaled by one common gain, so the stems still add up to the mix.

    Raises:
        StemError: the model has no such source.
    """
    sources = separation.stems
    if target == "all":
        chosen = dict(sources)
    elif target in sources:
        others = [audio for name, audio in sources.items() if name != target]
        chosen = {target: sources[target], f"no_{target}": np.sum(others, axis=0)}
    else:
        raise StemError(f"the Demucs model has no '{target}' stem; it separates {', '.join(sources)}")
    peak = max(postprocess.peak(audio) for audio in chosen.values())
    if peak > 1.0:
        chosen = {name: audio / peak for name, audio in chosen.items()}
    return {name: chosen[name] for name in sorted(chosen, key=stem_sort_key)}


def mix_files(files: list[tuple[Path, float]], block: int = 1 << 16) -> tuple[np.ndarray, int]:
    """Sum stem files, each times its gain, read block by block so only the mix is held in memory.

    The mix is peak-normalised only when it would clip (peak above 1.0); otherwise it is the exact sum.

    Args:
        files: ``(path, gain)`` pairs of WAV files at one sample rate (the stems of one set).
        block: frames read at a time.
    Returns:
        ``(mix, sample_rate)``: float32 ``[C, T]`` in [-1, 1], T the longest stem, C the most channels.
    Raises:
        ValueError: no files, or stems at different sample rates.
    """
    import soundfile as sf

    if not files:
        raise ValueError("nothing to mix")
    infos = [sf.info(str(path)) for path, _ in files]
    rates = {info.samplerate for info in infos}
    if len(rates) != 1:
        raise ValueError(f"the stems have different sample rates: {sorted(rates)}")
    channels, frames = max(info.channels for info in infos), max(info.frames for info in infos)
    mix = np.zeros((channels, frames), dtype=np.float32)
    for path, gain in files:
        position = 0
        with sf.SoundFile(str(path)) as handle:
            for chunk in handle.blocks(blocksize=block, dtype="float32", always_2d=True):
                mix[:, position:position + len(chunk)] += gain * chunk.T
                position += len(chunk)
    peak = postprocess.peak(mix)
    if peak > 1.0:
        mix /= peak
    return mix, rates.pop()


def stem_sort_key(name: str) -> tuple[int, str, bool]:
    """Sort stems as vocals, drums, bass, other, extra sources, each followed by its ``no_`` complement."""
    base = name.removeprefix("no_")
    rank = STEM_ORDER.index(base) if base in STEM_ORDER else len(STEM_ORDER)
    return rank, base, name != base


# ---------------------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------------------


class StemFolders:
    """A folder of stem sets addressed by key (a track's base name, or an upload id without extension).

    Keys and stem names from clients resolve only through :func:`~.storage.safe_child`: one plain name,
    no traversal, no links, never outside ``root``.
    """

    def __init__(self, root: Path, url_prefix: str) -> None:
        self.root = root
        self.url_prefix = url_prefix
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, key: object) -> Path:
        """The existing stem folder of ``key``. Raises UnsafeName for anything else."""
        path = safe_child(self.root, key)
        if not path.is_dir():
            raise UnsafeName("not a stem folder")
        return path

    def names(self, key: object) -> list[str]:
        """Stem names of a set (``vocals``, ``no_vocals`` ...), empty when there is no such set."""
        try:
            folder = self.folder(key)
        except UnsafeName:
            return []
        found = [path.stem for path in folder.iterdir()
                 if path.suffix == ".wav" and not path.is_symlink() and path.is_file()]
        return sorted(found, key=stem_sort_key)

    def file(self, key: object, stem: object) -> Path:
        """One stem file of a set, by stem name (without ``.wav``). Raises UnsafeName."""
        if not isinstance(stem, str):
            raise UnsafeName("invalid stem name")
        path = safe_child(self.folder(key), f"{stem}.wav")
        if not path.is_file():
            raise UnsafeName("not a stem file")
        return path

    def public(self, key: str) -> list[dict]:
        """``[{name, url}]`` of a set, in stem order, for events and the API."""
        return [{"name": name, "url": f"{self.url_prefix}/{key}/{name}.wav"} for name in self.names(key)]

    def commit(self, key: str, stems: dict[str, np.ndarray], sample_rate: int) -> list[str]:
        """Write a whole stem set atomically: into a ``.tmp-`` folder, then renamed to ``root/key``.

        A folder already at ``root/key`` (an orphan, or the set being replaced) goes to the trash first.

        Args:
            key: the set's key (validated as a plain name).
            stems: name -> float32 ``[C, T]`` in [-1, 1].
            sample_rate: Hz, for every stem.
        Returns:
            The stem names written.
        """
        final = safe_child(self.root, key, must_exist=False)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{key}-", dir=self.root))
        try:
            for name, audio in stems.items():
                with open(tmp / f"{name}.wav", "wb") as handle:
                    postprocess.encode(audio, sample_rate, "wav", handle)
                    handle.flush()
                    os.fsync(handle.fileno())
            fsync_dir(tmp)
            self.discard(key)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.root)
        return list(stems)

    def discard(self, key: str) -> None:
        """Remove a set (a link is removed, never followed): renamed into the trash first, then deleted."""
        path = self.root / key
        if not (path.is_symlink() or path.exists()):
            return
        trash = self.root / f"{TRASH_PREFIX}{time.time_ns()}-{key}"
        os.replace(path, trash)
        remove_tree(trash)


# ---------------------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------------------


class Bars:
    """One job's progress sent as several events (``stem_progress`` and ``postprocess_progress``).

    Every bar reads and raises the same ``job.progress``, so all of them stay monotonic and equal.
    """

    def __init__(self, *bars: Progress) -> None:
        self.bars = bars

    def phase(self, name: str, start: float, end: float) -> None:
        """Enter a phase covering ``[start, end]`` of every bar."""
        for bar in self.bars:
            bar.phase(name, start, end)

    def update(self, fraction: float) -> None:
        """Report the fraction of the current phase done (raises JobCancelled when cancelled)."""
        for bar in self.bars:
            bar.update(fraction)


def postprocess_status(tasks: list[dict]) -> str:
    """Overall post-processing state: failed if any task failed (D26), else running, queued, done."""
    states = {task.get("status") for task in tasks}
    for state in ("failed", "running", "queued"):
        if state in states:
            return state
    return "cancelled" if states == {"cancelled"} else "done"


class StemService:
    """Queues stem splits (after a generation, on request, of an upload) and runs them on the worker."""

    def __init__(self, splitter: Splitter, store: TrackStore, uploads: UploadStore, queue: JobQueue,
                 emit: Emit, *, any_dir: Path, unload_after: bool = False) -> None:
        self.splitter = splitter
        self.store = store
        self.uploads = uploads
        self.queue = queue
        self.emit = emit
        self.unload_after = unload_after
        self.tracks = StemFolders(store.stems_dir, "/static/stems")
        self.any = StemFolders(any_dir, "/static/stems_any")
        self._lock = threading.Lock()
        self._any_jobs: dict[str, str] = {}

    # ---- queueing (request threads, and the worker's after-job hook) -------------------------------

    def request_track_split(self, name: object, target: object, sid: str | None = None) -> tuple[Job, int]:
        """Queue a split of a committed track that has no stems and no split under way.

        Raises:
            StemRequestError: unknown track or target, stems present, a split queued or running, queue full.
        """
        if target not in TARGETS:
            raise StemRequestError("invalid_request", "target", f"target must be one of {', '.join(TARGETS)}")
        with self._lock:
            track = self.store.get(name)
            if track is None:
                raise StemRequestError("not_found", "name", "no such track")
            if self.tracks.names(track.base):
                raise StemRequestError("already_split", "name", "this track already has stems")
            if self._live(self._task(track.meta).get("job_id")):
                raise StemRequestError("busy", "name", "a split of this track is already queued or running")
            job = Job(kind=STEMS_KIND, label=track.base, sid=sid, payload={
                "name": track.base, "target": target,
                "event_fields": {"name": track.base, "task": TASK, "target": target}})
            try:
                position = self.queue.submit(job)
            except QueueFull as exc:
                raise StemRequestError("queue_full", "name", str(exc)) from None
            queued = {"type": TASK, "status": "queued", "target": target, "job_id": job.id}
            self._write_task(track.base, queued, replace=True)
        self.emit(protocol.POSTPROCESS_QUEUED, {"job_id": job.id, "name": track.base, "task": TASK,
                                                "tasks": [TASK], "target": target, "position": position})
        return job, position

    def request_any_split(self, upload_id: object, sid: str | None = None) -> tuple[Job, int]:
        """Queue a split of an uploaded file into ``static/stems_any/<upload id without extension>/``.

        Raises:
            RequestError: not an upload id.
            StemRequestError: upload gone, already split or under way, queue full.
        """
        upload = protocol.upload_ref("id", upload_id)
        info = self.uploads.info(upload) if upload else None
        if info is None:
            raise StemRequestError("not_found", "id", "the uploaded file is gone; upload it again")
        key = upload.split(".", 1)[0]
        with self._lock:
            if self.any.names(key):
                raise StemRequestError("already_split", "id", "this file has been split already")
            if self._live(self._any_jobs.get(key)):
                raise StemRequestError("busy", "id", "this file is already being split")
            fields = {"id": key, "upload": upload, "display_name": info.name}
            job = Job(kind=ANY_KIND, label=info.name, sid=sid, payload={**fields, "event_fields": fields})
            try:
                position = self.queue.submit(job)
            except QueueFull as exc:
                raise StemRequestError("queue_full", "id", str(exc)) from None
            self._any_jobs[key] = job.id
        return job, position

    def after_job(self, job: Job) -> None:
        """Worker hook: a finished generation that asked for stems gets its split queued right away."""
        target = job.payload.get("request", {}).get("stem_split") if job.kind == "generate" else None
        if not target or job.state is not JobState.DONE or not job.result:
            return
        name = job.result["name"]
        # The track is brand new: a stem folder under its name is an orphan (e.g. of a quarantined track).
        self.tracks.discard(name)
        try:
            self.request_track_split(name, target, job.sid)
        except StemRequestError as exc:
            log.warning("could not queue the stem split of %s: %s", name, exc.message)
            self._write_task(name, {"type": TASK, "status": "failed", "target": target, "error": exc.message},
                             replace=True)
            # No stem job exists, so the event carries the generation's job id, as on_finish_audio did.
            self.emit(protocol.POSTPROCESS_DONE, {"job_id": job.id, "name": name, "task": TASK,
                                                  "state": "failed", "error": exc.as_json()})

    def _live(self, job_id: object) -> bool:
        """Whether a job is still queued or running."""
        job = self.queue.get(job_id) if isinstance(job_id, str) else None
        return job is not None and job.state in LIVE_STATES

    # ---- state --------------------------------------------------------------------------------------

    @staticmethod
    def _task(meta: dict) -> dict:
        """The stem-split task of a track's JSON (empty when none)."""
        tasks = meta.get("postprocess", {}).get("tasks", [])
        return next((task for task in tasks if isinstance(task, dict) and task.get("type") == TASK), {})

    def _write_task(self, name: str, fields: dict, *, replace: bool = False) -> dict | None:
        """Update the track JSON's stem task, ``parameters.stem_split`` and ``postprocess.status`` atomically.

        Returns the new JSON, or None when the track is gone.
        """
        def change(meta: dict) -> None:
            post = meta.setdefault("postprocess", {})
            tasks = [task for task in post.get("tasks", []) if isinstance(task, dict)]
            current = next((task for task in tasks if task.get("type") == TASK), None)
            if current is None or replace:
                current = {"type": TASK}
                tasks = [task for task in tasks if task.get("type") != TASK] + [current]
            current.update(fields)
            if current["status"] != "failed":
                current.pop("error", None)
            post["tasks"] = tasks
            post["status"] = postprocess_status(tasks)
            meta.setdefault("parameters", {})["stem_split"] = {"requested": current.get("target"),
                                                               "status": current["status"]}

        return self.store.update_meta(name, change)

    def track_status(self, name: str) -> dict:
        """The stem task of a track as it really is; an open task whose job is gone is closed here.

        A job cancelled while queued, or cut short by a restart, leaves its task open in the JSON; the
        queue knows how it ended, and the JSON is corrected the first time someone asks.
        """
        track = self.store.get(name)
        task = self._task(track.meta) if track else {}
        if task.get("status") in ("queued", "running") and not self._live(task.get("job_id")):
            job = self.queue.get(task.get("job_id"))
            cancelled = job is not None and job.state is JobState.CANCELLED
            message = (job.error or {}).get("message") if job else None
            meta = self._write_task(name, {"status": "cancelled" if cancelled else "failed",
                                           "error": message or "the split stopped before it finished"})
            task = self._task(meta) if meta else {}
        return task

    # ---- running (worker thread) --------------------------------------------------------------------

    def run_track_split(self, job: Job, progress: Progress) -> dict:
        """Split a track into ``static/stems/<name>/`` and record the result in its JSON."""
        name, target = job.payload["name"], job.payload["target"]
        postprocess_bar = Progress(job, self.emit, protocol.POSTPROCESS_PROGRESS)
        bars = Bars(progress, postprocess_bar)
        try:
            track = self.store.get(name)
            if track is None or self._write_task(name, {"status": "running", "started": time.time()}) is None:
                raise StemError("the track was deleted before its stems could be made")
            bars.phase("reading", 0.0, 0.02)
            audio, rate = postprocess.read_audio(self.store.audio_dir / track.audio_file)
            stems, sample_rate = self._split(audio, rate, target, self.tracks, name, bars)
            meta = self._write_task(name, {
                "status": "done", "stems": [f"static/stems/{name}/{stem}.wav" for stem in stems],
                "output_dir": f"static/stems/{name}", "model": self.splitter.model_name,
                "sample_rate": sample_rate, "finished": time.time()})
            if meta is None:
                self.tracks.discard(name)
                raise StemError("the track was deleted while its stems were being made")
        except BaseException as exc:
            state = "cancelled" if isinstance(exc, JobCancelled) else "failed"
            message = error_info(exc)["message"]
            self._write_task(name, {"status": state, "error": message, "finished": time.time()})
            raise
        postprocess_bar.complete()
        return {"name": name, "target": target, "stems": self.tracks.public(name),
                "postprocess": meta["postprocess"]}

    def run_any_split(self, job: Job, progress: Progress) -> dict:
        """Split an uploaded file into ``static/stems_any/<id>/`` (no track JSON is made)."""
        key, upload = job.payload["id"], job.payload["upload"]
        bars = Bars(progress)
        bars.phase("reading", 0.0, 0.02)
        audio, rate = self.uploads.read(upload)
        self._split(audio, rate, "all", self.any, key, bars)
        if self.uploads.info(upload) is None:
            self.any.discard(key)
            raise StemError("the uploaded file was removed while it was being split")
        return {"id": key, "upload": upload, "display_name": job.payload["display_name"],
                "stems": self.any.public(key), "model": self.splitter.model_name}

    def _split(self, audio: np.ndarray, rate: int, target: str, folders: StemFolders, key: str,
               bars: Bars) -> tuple[list[str], int]:
        """Load the model, separate float32 ``[C, T]`` audio at ``rate`` Hz and commit the stem set."""
        try:
            bars.phase("loading_model", 0.02, 0.05)
            self.splitter.load()
            bars.phase("separating", 0.05, 0.95)
            separation = self.splitter.separate(audio, rate, bars.update)
            bars.phase("writing", 0.95, 1.0)
            stems = folders.commit(key, select_stems(separation, target), separation.sample_rate)
        finally:
            if self.unload_after:
                self.splitter.unload()
        return stems, separation.sample_rate
