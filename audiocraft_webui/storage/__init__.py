"""Files are the database: path safety (:mod:`.paths`), file names (:mod:`.naming`), the track store
(:mod:`.tracks`), all-or-nothing removal (:mod:`.trash`) and the startup sweep (:mod:`.recovery`)."""
from .naming import base_name, sanitize_artist
from .paths import WINDOWS_DEVICES, UnsafeName, remove_tree, safe_child, safe_descendant
from .recovery import RecoveryReport
from .tracks import Cleared, Track, TrackLocked, TrackStore
from .trash import TRASH_PREFIX

__all__ = ["TRASH_PREFIX", "WINDOWS_DEVICES", "Cleared", "RecoveryReport", "Track", "TrackLocked", "TrackStore",
           "UnsafeName", "base_name",
           "remove_tree", "safe_child", "safe_descendant", "sanitize_artist"]
