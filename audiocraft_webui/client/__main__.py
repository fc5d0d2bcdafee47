"""Generate, list, cancel and split into stems from a terminal, through an audiocraft-webui server's REST API.

Examples::

    python -m audiocraft_webui.client generate "warm lofi piano" --duration 10 --model small --out take.wav
    python -m audiocraft_webui.client list --query piano
    python -m audiocraft_webui.client stems small_19082025_14_05 --target vocals --out stems/
    python -m audiocraft_webui.client cancel 3f2a9c1b7d44
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from .api import ApiError, Client

DEFAULT_SERVER = "http://127.0.0.1:5000"
BAR_WIDTH = 30
#: Output formats the server writes, by file extension.
FORMATS = ("wav", "flac", "mp3")


class ProgressBar:
    """A one-line text bar on a terminal; one line per phase elsewhere (logs, pipes)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self.phase = ""

    def show(self, fraction: float, phase: str) -> None:
        """Draw the bar at ``fraction`` (0 … 1) in ``phase``."""
        if self.live:
            filled = int(BAR_WIDTH * fraction)
            self.out.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:6.1%} {phase:<16}")
        elif phase != self.phase:
            self.out.write(f"{fraction:6.1%} {phase}\n")
        self.phase = phase
        self.out.flush()

    def end(self) -> None:
        """Finish the line."""
        if self.live:
            self.out.write("\n")
            self.out.flush()


def follow(client: Client, job_id: str, out: TextIO) -> dict:
    """Show a job's progress until it ends; returns its final view."""
    bar = ProgressBar(out)
    final: dict = {}
    for event, data in client.events(job_id):
        if event == "job":
            final = data
            if data["state"] in ("queued", "running"):
                bar.show(data["progress"], data["phase"])
        elif "progress" in data and "phase" in data:
            bar.show(data["progress"], data["phase"])
    bar.end()
    return final


def generate(client: Client, args: argparse.Namespace) -> int:
    """Queue a generation, show its progress and save the track."""
    out = Path(args.out) if args.out else None
    fmt = args.format or (out.suffix.lstrip(".").lower() if out and out.suffix.lstrip(".").lower() in FORMATS
                          else None)
    body = {"prompt": args.prompt, "model": args.model, "duration": args.duration, "seed": args.seed,
            "format": fmt, "top_k": args.top_k, "top_p": args.top_p, "temperature": args.temperature,
            "cfg_coef": args.cfg, "artist": args.artist, "loudness": args.loudness, "stem_split": args.stems}
    body.update(workflow_fields(args))
    if args.melody:
        body["audio_prompt"] = client.upload(Path(args.melody), "melody")["id"]
    if args.continue_from:
        body["continuation"] = client.upload(Path(args.continue_from), "continuation")["id"]
    created = client.call("POST", "/generations", {key: value for key, value in body.items() if value is not None})
    for name, change in created["clamped"].items():
        print(f"{name}: {change['requested']} is out of range, {change['used']} is used", file=sys.stderr)
    print(f"job {created['job_id']} queued at {created['position']}, seed {created['seed']}", file=sys.stderr)
    final = follow(client, created["job_id"], sys.stderr)
    if final.get("state") != "done":
        return failed(final)
    result = final["result"]
    takes = result.get("takes") or [result]
    for index, take in enumerate(takes):
        target = out or Path(take["audio_url"].rsplit("/", 1)[-1])
        if out and len(takes) > 1:  # take.wav -> take-A.wav, take-B.wav ...
            target = out.with_name(f"{out.stem}-{chr(65 + index)}{out.suffix}")
        client.download(take["audio_url"], target)
        print(target)
    return 0


def workflow_fields(args: argparse.Namespace) -> dict:
    """The workflow fields of a generation (README, "Workflow fields"), from the command line."""
    fields = {"variations": args.takes, "bpm": args.bpm, "key": args.key, "continue_track": args.extend,
              "cut_at": args.cut_at}
    if args.loop is not None:
        fields["loop"] = {"bars": args.loop, "bpm": args.bpm, "beats_per_bar": args.beats_per_bar}
    else:
        fields["bars"] = args.bars
    return {key: value for key, value in fields.items() if value is not None}


def stems(client: Client, args: argparse.Namespace) -> int:
    """Split a track (by name) or a local audio file into stems, and save them when asked."""
    source = Path(args.source)
    if source.is_file():
        created = client.call("POST", f"/uploads/{client.upload(source, 'demucs')['id']}/stems")
    else:
        created = client.call("POST", f"/tracks/{args.source}/stems", {"target": args.target})
    final = follow(client, created["job_id"], sys.stderr)
    if final.get("state") != "done":
        return failed(final)
    folder = Path(args.out) if args.out else None
    for stem in final["result"]["stems"]:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            print(client.download(stem["url"], folder / f"{stem['name']}.wav"))
        else:
            print(client.server + stem["url"])
    return 0


def list_tracks(client: Client, args: argparse.Namespace) -> int:
    """Print the tracks, newest first: name, model, seconds and prompt."""
    page = client.tracks(q=args.query, model=args.model, limit=args.limit)
    for track in page["tracks"]:
        meta = track["meta"]
        print(f"{track['name']}\t{meta.get('model', '')}\t{meta.get('duration_seconds', '')}\t{meta.get('prompt', '')}")
    print(f"{len(page['tracks'])} of {page['total']} tracks", file=sys.stderr)
    return 0


def cancel(client: Client, args: argparse.Namespace) -> int:
    """Cancel a waiting or running job."""
    answer = client.call("DELETE", f"/jobs/{args.job_id}")
    print(f"job {answer['job_id']}: {answer['outcome']}")
    return 0


def failed(final: dict) -> int:
    """Say how a job ended that did not succeed."""
    error = final.get("error") or {}
    print(f"job {final.get('state', 'lost')}: {error.get('message', 'no reason given')}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    """The command line."""
    main = argparse.ArgumentParser(prog="python -m audiocraft_webui.client", description=__doc__.split("\n")[0])
    main.add_argument("--server", default=os.environ.get("AUDIOCRAFT_WEBUI_SERVER", DEFAULT_SERVER),
                      help="the server's address (default: $AUDIOCRAFT_WEBUI_SERVER or %(default)s)")
    main.add_argument("--token", default=os.environ.get("AUDIOCRAFT_WEBUI_API_TOKEN"),
                      help="the API token, when the server needs one (default: $AUDIOCRAFT_WEBUI_API_TOKEN)")
    commands = main.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="generate a track and save it")
    gen.add_argument("prompt")
    gen.add_argument("--model", default="small")
    gen.add_argument("--duration", type=int)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--format", choices=FORMATS, help="default: from --out's extension, else wav")
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--cfg", type=float)
    gen.add_argument("--artist")
    gen.add_argument("--loudness", choices=("-14", "-16", "-23", "off"))
    gen.add_argument("--stems", choices=("vocals", "drums", "bass", "other", "all"), help="split it afterwards")
    gen.add_argument("--melody", metavar="FILE", help="condition a melody model on this clip")
    gen.add_argument("--continue", dest="continue_from", metavar="FILE", help="continue this clip")
    gen.add_argument("--takes", type=int, metavar="N", help="N takes (1-8) in one batched pass: FILE-A, FILE-B ...")
    gen.add_argument("--bpm", type=int, help="tempo, added to the prompt (needed by --bars and --loop)")
    gen.add_argument("--key", help="key and scale added to the prompt, e.g. 'C minor'")
    gen.add_argument("--bars", type=int, help="length in bars of 4 beats at --bpm, exact")
    gen.add_argument("--loop", type=int, metavar="BARS", help="a seamless loop of BARS bars at --bpm")
    gen.add_argument("--beats-per-bar", type=int, default=4, help="beats per bar of --loop (default: 4)")
    gen.add_argument("--extend", metavar="TRACK", help="continue this track of the library by --duration seconds")
    gen.add_argument("--cut-at", type=float, metavar="SECONDS", help="with --extend: regenerate it from here")
    gen.add_argument("--out", metavar="FILE", help="where to save it (default: the server's name, here)")
    gen.set_defaults(run=generate)
    listing = commands.add_parser("list", help="list the tracks, newest first")
    listing.add_argument("--query", help="words in the prompt")
    listing.add_argument("--model")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=list_tracks)
    stop = commands.add_parser("cancel", help="cancel a job")
    stop.add_argument("job_id")
    stop.set_defaults(run=cancel)
    split = commands.add_parser("stems", help="split a track (its name) or a local audio file into stems")
    split.add_argument("source", help="a track name, or an audio file to upload")
    split.add_argument("--target", default="all", choices=("all", "vocals", "drums", "bass", "other"))
    split.add_argument("--out", metavar="FOLDER", help="save the stems here (default: print their URLs)")
    split.set_defaults(run=stems)
    return main


def main(argv: list[str] | None = None) -> int:
    """Run one command; a refusal or an unreachable server is a message and exit status 2."""
    args = parser().parse_args(argv)
    client = Client(args.server, args.token)
    try:
        return int(args.run(client, args))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"error: cannot reach {args.server}: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
