"""Track file names: ``[Artist_]Model_[Seed_]DDMMYYYY_HH_MM``, ASCII only, Cyrillic artists transliterated."""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime

MAX_ARTIST_IN_NAME = 40


_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u", "f",
     "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"], strict=True))


def _transliterate(text: str) -> str:
    """Spell Cyrillic in Latin letters so Russian artist names survive in file names."""
    return "".join(_CYRILLIC.get(ch.lower(), ch).capitalize() if ch.isupper() and ch.lower() in _CYRILLIC
                   else _CYRILLIC.get(ch, ch) for ch in text)


def sanitize_artist(artist: str) -> str:
    """Turn an artist name into an ASCII file-name prefix (empty when nothing usable is left)."""
    ascii_text = unicodedata.normalize("NFKD", _transliterate(artist)).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", ascii_text).strip("-")
    return cleaned[:MAX_ARTIST_IN_NAME].strip("-")


def base_name(model_key: str, seed: int | None, artist: str, when: datetime) -> str:
    """Build ``[Artist_]Model_[Seed_]DDMMYYYY_HH_MM`` (seed left out in auto mode)."""
    parts = [sanitize_artist(artist), model_key, "" if seed is None else str(seed), when.strftime("%d%m%Y_%H_%M")]
    return "_".join(part for part in parts if part)


