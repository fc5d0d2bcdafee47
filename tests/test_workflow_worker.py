"""Takes through the worker process (the default): the batch crosses the process boundary, MBD decodes each take
from the tokens kept in the worker, and a stem split is queued for every take."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import EventLog

pytestmark = pytest.mark.slow  # starts a worker process and loads a model in it


def test_batched_takes_with_mbd_and_stems_in_the_worker_process(make_app):
    app = make_app({"ISOLATE_WORKER": True})
    services = app.extensions["audiocraft_webui"]
    log = EventLog(app.extensions["socketio"].test_client(app, flask_test_client=app.test_client()))
    services.worker.start()
    try:
        ack = log.client.emit("submit_sliders", {
            "prompt": "two takes through the worker", "model": "small", "auto_tune": False, "mbd": True,
            "variations": 2, "stem_split": "vocals", "values": {"duration": 1, "seed": 90}}, callback=True)
        assert ack["ok"], ack
        done = log.wait("on_finish_audio", where=lambda p: p["job_id"] == ack["job_id"], timeout=180)
        assert done["state"] == "done", done
        takes = done["takes"]
        metas = [json.loads((services.store.root / take["json_filename"]).read_text()) for take in takes]
        assert [meta["parameters"]["multi_band_diffusion"]["status"] for meta in metas] == ["applied", "applied"]
        assert [meta["group_index"] for meta in metas] == [0, 1] and metas[0]["group_batched"] is True
        audio = [sf.read(services.store.root / take["filename"], dtype="float32")[0] for take in takes]
        assert not np.array_equal(audio[0], audio[1]), "each take is decoded from its own tokens"
        split = {log.wait("postprocess_done", where=lambda p, name=take["name"]: p.get("name") == name,
                          timeout=180)["state"] for take in takes}
        assert split == {"done"}, "every take got its stems"
    finally:
        services.worker.stop()
        services.worker_process.stop()
