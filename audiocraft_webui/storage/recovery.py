"""The startup sweep: finish interrupted removals, drop temp files and trash, quarantine what is broken.

It never deletes audio: an orphan or a corrupt record is moved to ``quarantine/`` and reported.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..fileio import TMP_PREFIX, read_json
from .paths import NAME_PATTERN, remove_tree
from .trash import REMOVAL_JOURNAL, TRASH_PREFIX, move_to_trash

if TYPE_CHECKING:
    from .tracks import TrackStore

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    """What the startup sweep found and did; shown to the user, never silently dropped."""

    removed_temp: list[str] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    finished_trash: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """The report for the log and the browser."""
        return {"removed_temp": self.removed_temp, "quarantined": self.quarantined,
                "finished_trash": self.finished_trash}


class RecoverySweep:
    """One run of the startup sweep over a track store and the extra folders it manages (uploads ...)."""

    def __init__(self, store: TrackStore, extra_folders: tuple[Path, ...] = ()) -> None:
        self.store = store
        self.folders = (store.audio_dir, store.stems_dir, *extra_folders)

    def run(self) -> RecoveryReport:
        """Finish removals, drop temp files and trash, quarantine corrupt JSON and orphans; never delete audio."""
        report = RecoveryReport()
        self._finish_removal()
        for folder in (*self.folders, self.store.settings_dir):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.startswith(TMP_PREFIX):
                    remove_tree(path)
                    report.removed_temp.append(path.relative_to(self.store.root).as_posix())
                elif path.name.startswith(TRASH_PREFIX):
                    remove_tree(path)
                    report.finished_trash.append(path.relative_to(self.store.root).as_posix())
        self._quarantine_broken(report)
        if report.removed_temp or report.quarantined or report.finished_trash:
            log.warning("recovery sweep: %s", report.as_json())
        return report

    def _finish_removal(self) -> None:
        """Finish a delete or clear-all that a crash interrupted: move the rest of its journaled victims."""
        journal = self.store.settings_dir / REMOVAL_JOURNAL
        data = read_json(journal)
        if isinstance(data, dict) and isinstance(data.get("stamp"), str) and data["stamp"].startswith(TRASH_PREFIX) \
                and NAME_PATTERN.match(data["stamp"][1:]) and isinstance(data.get("victims"), list):
            managed = {folder.resolve() for folder in self.folders}
            victims = [self.store.root / item for item in data["victims"] if isinstance(item, str)]
            move_to_trash([path for path in victims if path.parent.resolve() in managed
                            and path.name not in ("", ".", "..")], data["stamp"])
            log.warning("finished a removal interrupted by a crash (%d entries)", len(victims))
        journal.unlink(missing_ok=True)

    def _quarantine_broken(self, report: RecoveryReport) -> None:
        """Move corrupt or invalid JSON, audio without JSON and JSON without audio out of the history."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for path in sorted(self.store.audio_dir.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix == ".json":
                meta = self.store.record(path.stem)
                if not isinstance(meta, dict):
                    reason = "invalid_record" if isinstance(read_json(path), dict) else "corrupt_json"
                    target = f"{path.name}.{reason.split('_')[0]}-{stamp}"
                elif self.store.audio_of(path.stem) is None:
                    reason, target = "json_without_audio", path.name
                else:
                    continue
            elif path.suffix in self.store.audio_extensions \
                    and not (self.store.audio_dir / f"{path.stem}.json").exists():
                reason, target = "audio_without_json", path.name
            else:
                continue
            self.store.quarantine_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, self.store.quarantine_dir / target)
            report.quarantined.append({"file": path.name, "reason": reason,
                                       "moved_to": f"quarantine/{target}"})
        for path in self.store.settings_dir.glob("*.json"):
            if read_json(path) is None:
                target = f"{path.name}.corrupt-{stamp}"
                os.replace(path, self.store.settings_dir / target)
                report.quarantined.append({"file": path.name, "reason": "corrupt_json",
                                           "moved_to": f"settings/{target}"})
