"""Models you have: the cache marks in GET /api/models and the boot config, the refusal of a model that cannot be
fetched (before anything is queued), and a first download's bytes and percent in the job's progress.

The session's tiny hub holds every built-in model; a model is made "missing" by pointing audiocraft's cache at
an empty folder or by a custom hub id nobody wrote. Downloads go through a stand-in for ``hf_hub_download`` that
drives the ``tqdm_class`` the way huggingface_hub does (the tests have no network).
"""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import huggingface_hub
import pytest

from audiocraft_webui import modelcache
from audiocraft_webui.models import HUB_PREFIX
from tests.fakes import FakeEngine

SIZES = {"state_dict.bin": 3_000_000, "compression_state_dict.bin": 1_000_000}


@pytest.fixture
def app(make_app):
    """An app on the fake engine with one custom model that is nowhere (a hub id nobody wrote)."""
    return make_app({"CUSTOM_MODELS": ["nobody/musicgen-nowhere"]}, engine=FakeEngine())


def submit(sio, model: str = "small") -> dict:
    """Send a 1 s generation and return the ack."""
    return sio.client.emit("submit_sliders", {"prompt": "cached?", "model": model, "values": {"duration": 1}},
                           callback=True)


def test_every_model_says_whether_it_is_here_and_how_large_it_is(client, services, tiny_hub, monkeypatch):
    listed = {model["key"]: model for model in client.get("/api/models").get_json()}
    assert listed.keys() == set(services.catalog.keys())
    small = listed["small"]
    files = [modelcache.cached_file(HUB_PREFIX + "small", name) for name in modelcache.CHECKPOINT_FILES]
    assert small["cached"] is True and small["size_source"] == "cache"
    assert small["size_bytes"] == sum(path.stat().st_size for path in files)
    assert {key: model["cached"] for key, model in listed.items() if not model["custom"]} == {
        key: True for key in listed if not key.startswith("custom-")}
    nowhere = listed["custom-musicgen-nowhere"]
    assert nowhere == {**nowhere, "cached": False, "size_bytes": None, "size_source": "unknown", "custom": True}
    boot = json.loads(client.get("/").get_data(as_text=True).split('type="application/json"', 1)[1]
                      .split(">", 1)[1].split("</script>", 1)[0])
    assert boot["models"] == list(listed.values()) and boot["loudness_targets"] == ["-14", "-16", "-23", "off"]

    monkeypatch.setenv("AUDIOCRAFT_CACHE_DIR", str(tiny_hub / "empty"))
    large = {model["key"]: model for model in client.get("/api/models").get_json()}["large"]
    assert large == {**large, "cached": False, "size_source": "estimate",
                     "size_bytes": 3_300_000_000 * 4 + modelcache.CODEC_BYTES}


def test_a_model_that_cannot_be_fetched_is_refused_before_it_is_queued(sio, services):
    assert modelcache.offline(), "the tests run with HF_HUB_OFFLINE=1"
    ack = submit(sio, "custom-musicgen-nowhere")
    assert ack["ok"] is False and ack["error"]["type"] == "model_unavailable" and ack["error"]["field"] == "model"
    assert "not on this machine" in ack["error"]["message"]
    assert sio.wait("request_error", where=lambda p: p["error"] == ack["error"])
    assert services.queue.snapshot()["queued"] == [] and services.store.load_last_run() is None
    assert submit(sio)["ok"] is True, "a cached model is queued as before"


def test_a_model_that_is_not_cached_is_refused_on_rerun_too(sio, services, client, running_worker, monkeypatch):
    done_ack = submit(sio)
    name = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == done_ack["job_id"])["name"]
    monkeypatch.setattr(modelcache, "cached_file", lambda repo, filename: None)
    ack = sio.client.emit("rerun", {"name": name}, callback=True)
    assert ack["ok"] is False and ack["error"]["type"] == "model_unavailable"


def fake_hub(monkeypatch, *, fail: Exception | None = None) -> list[str]:
    """Make the small model's files missing on an online machine and answer downloads like huggingface_hub does,
    through its tqdm_class."""
    fetched: list[str] = []
    monkeypatch.setattr(modelcache, "offline", lambda: False)
    real_cached = modelcache.cached_file
    monkeypatch.setattr(modelcache, "cached_file", lambda repo, filename: None if (
        repo == HUB_PREFIX + "small" and filename not in fetched) else real_cached(repo, filename))

    def hf_hub_download(repo_id, filename, *, cache_dir=None, dry_run=False, tqdm_class=None):
        assert repo_id == HUB_PREFIX + "small" and cache_dir is None
        if dry_run:
            return SimpleNamespace(file_size=SIZES[filename], will_download=True)
        if fail is not None:
            raise fail
        with tqdm_class(desc=filename, total=SIZES[filename], initial=0, unit="B", unit_scale=True) as bar:
            for _ in range(SIZES[filename] // 500_000):
                time.sleep(0.12)  # longer than the progress throttle, so every chunk is reported
                bar.update(500_000)
        fetched.append(filename)
        return f"/cache/{filename}"

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return fetched


def test_a_first_download_shows_bytes_and_percent_in_the_progress(sio, services, running_worker, monkeypatch):
    fetched = fake_hub(monkeypatch)
    ack = submit(sio)
    done = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])
    assert done["state"] == "done" and sorted(fetched) == sorted(SIZES)
    events = [p for p in sio.named("progress") if p["job_id"] == ack["job_id"]]
    assert "downloading" in {p["phase"] for p in events}, "the job said it was downloading"
    downloading = [p for p in events if p["phase"] == "downloading" and "total_bytes" in p]
    assert len(downloading) >= 4, "bytes arrive as they come"
    total = sum(SIZES.values())
    assert {p["total_bytes"] for p in downloading} == {total}
    got = [p["downloaded_bytes"] for p in downloading]
    assert got == sorted(got) and got[-1] == total
    assert all(p["progress"] <= 0.04 for p in downloading)
    assert all("downloaded_bytes" not in p for p in events if p["phase"] != "downloading")
    assert [p["phase"] for p in events].index("downloading") < [p["phase"] for p in events].index("generating")

    again = submit(sio)
    sio.wait("on_finish_audio", where=lambda p: p["job_id"] == again["job_id"])
    assert not [p for p in sio.named("progress") if p["job_id"] == again["job_id"] and p["phase"] == "downloading"]


def test_a_failed_download_fails_that_job_with_the_model_named(sio, services, running_worker, monkeypatch):
    fake_hub(monkeypatch, fail=OSError("connection reset"))
    ack = submit(sio)
    failed = sio.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"])
    assert failed["state"] == "failed" and failed["error"]["type"] == "DownloadError"
    assert "facebook/musicgen-small" in failed["error"]["message"] and "connection reset" in failed["error"]["message"]
    assert services.store.list_tracks() == []
