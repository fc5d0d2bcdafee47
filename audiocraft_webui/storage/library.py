"""The library view of the track store: the favourite and lock flags, and the filters, sort and pages of
``GET /api/tracks``.

Everything a client sends is checked here and refused with the field it names (:class:`RequestError`);
nothing from a query ever reaches a path.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time

from ..protocol import SEED_MAX, RequestError
from .tracks import Track

#: The flags a track's JSON may carry at its top level (absent means false).
FLAGS = ("favorite", "locked")
SORTS = ("date", "name")
ORDERS = ("asc", "desc")
#: The query parameters ``GET /api/tracks`` understands.
QUERY_KEYS = ("q", "model", "format", "favorite", "locked", "artist", "seed", "since", "until", "sort", "order",
              "limit", "offset")
MAX_QUERY_CHARS = 200
MAX_LIMIT = 10_000
_TRUTH = {"true": True, "1": True, "false": False, "0": False}


def parse_flags(body: object) -> dict[str, bool]:
    """Read ``{favorite?: bool, locked?: bool}``; anything else is refused by name.

    Raises:
        RequestError: not an object, empty, an unknown key, or a value that is not a JSON boolean.
    """
    if not isinstance(body, dict):
        raise RequestError("payload", 'send a JSON object such as {"favorite": true, "locked": false}')
    unknown = sorted(str(key) for key in body if key not in FLAGS)
    if unknown:
        raise RequestError(unknown[0][:40], f"unknown field {unknown[0][:40]!r}: only favorite and locked can be set")
    if not body:
        raise RequestError("payload", "nothing to change: send favorite and/or locked")
    for key, value in body.items():
        if not isinstance(value, bool):
            raise RequestError(key, f"{key} must be true or false")
    return dict(body)


@dataclass(frozen=True)
class TrackQuery:
    """A validated library query: filters (None = any), sort, order and page."""

    words: tuple[str, ...] = ()
    model: str | None = None
    format: str | None = None
    favorite: bool | None = None
    locked: bool | None = None
    artist: str | None = None
    seed: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "date"
    order: str = "desc"
    limit: int | None = None
    offset: int = 0

    def matches(self, track: Track) -> bool:
        """Whether a track passes every filter of the query."""
        meta = track.meta
        params = meta.get("parameters")
        params = params if isinstance(params, dict) else {}
        prompt = str(meta.get("prompt", "")).casefold()
        when = created(track)
        return (all(word in prompt for word in self.words)
                and (self.model is None or meta.get("model") == self.model)
                and (self.format is None or track.audio_file.rsplit(".", 1)[-1] == self.format)
                and (self.favorite is None or (meta.get("favorite") is True) == self.favorite)
                and (self.locked is None or track.locked == self.locked)
                and (self.artist is None or self.artist in str(params.get("artist", "")).casefold())
                and (self.seed is None or params.get("seed") == self.seed)
                and (self.since is None or when >= self.since)
                and (self.until is None or when <= self.until))


def created(track: Track) -> datetime:
    """When a track was made: its JSON's ``created`` (local time), else its audio file's time."""
    stamp = track.meta.get("created")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).replace(tzinfo=None)
        except ValueError:
            pass
    return datetime.fromtimestamp(track.mtime)


def _text(args: Mapping[str, str], name: str) -> str | None:
    """A text parameter, stripped; None when absent or empty."""
    raw = args.get(name)
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_QUERY_CHARS:
        raise RequestError(name, f"{name} is too long (at most {MAX_QUERY_CHARS} characters)")
    return raw.strip()


def _choice(args: Mapping[str, str], name: str, options: tuple[str, ...], default: str) -> str:
    """One of a fixed set of words."""
    value = _text(args, name)
    if value is None:
        return default
    if value.lower() not in options:
        raise RequestError(name, f"{name} must be one of {', '.join(options)}")
    return value.lower()


def _truth(args: Mapping[str, str], name: str) -> bool | None:
    """``true``/``false`` (or 1/0); None when absent."""
    value = _text(args, name)
    if value is None:
        return None
    if value.lower() not in _TRUTH:
        raise RequestError(name, f"{name} must be true or false")
    return _TRUTH[value.lower()]


def _whole(args: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """A whole number in ``[low, high]``; None when absent."""
    value = _text(args, name)
    if value is None:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise RequestError(name, f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _moment(args: Mapping[str, str], name: str, end_of_day: bool) -> datetime | None:
    """A date (``2025-08-19``, the whole day) or a local date and time (``2025-08-19T14:05``)."""
    value = _text(args, name)
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end_of_day else time.min)
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise RequestError(name, f"{name} must be a date such as 2025-08-19 or 2025-08-19T14:05") from None


def parse_query(args: Mapping[str, str]) -> TrackQuery:
    """Validate the query string of ``GET /api/tracks`` (every parameter optional; none = every track, newest first).

    Raises:
        RequestError: an unknown parameter or a value out of its form, naming the parameter.
    """
    unknown = sorted(key for key in args if key not in QUERY_KEYS)
    if unknown:
        raise RequestError(unknown[0][:40], f"unknown parameter {unknown[0][:40]!r}; "
                                            f"the list understands {', '.join(QUERY_KEYS)}")
    text = _text(args, "q")
    artist = _text(args, "artist")
    model = _text(args, "model")
    fmt = _text(args, "format")
    query = TrackQuery(
        words=tuple(text.casefold().split()) if text else (), model=model, format=fmt.lower() if fmt else None,
        favorite=_truth(args, "favorite"), locked=_truth(args, "locked"),
        artist=artist.casefold() if artist else None, seed=_whole(args, "seed", 0, SEED_MAX),
        since=_moment(args, "since", end_of_day=False), until=_moment(args, "until", end_of_day=True),
        sort=_choice(args, "sort", SORTS, "date"), order=_choice(args, "order", ORDERS, "desc"),
        limit=_whole(args, "limit", 1, MAX_LIMIT), offset=_whole(args, "offset", 0, MAX_LIMIT * 100) or 0)
    if query.since and query.until and query.since > query.until:
        raise RequestError("since", "since is after until")
    return query


def select(tracks: list[Track], query: TrackQuery) -> tuple[list[Track], int]:
    """The page of tracks a query asks for, and how many matched in all (before the page)."""
    matched = [track for track in tracks if query.matches(track)]
    if query.sort == "name":
        matched.sort(key=lambda track: track.base.casefold(), reverse=query.order == "desc")
    else:
        matched.sort(key=lambda track: (created(track), track.mtime), reverse=query.order == "desc")
    end = None if query.limit is None else query.offset + query.limit
    return matched[query.offset:end], len(matched)

