"""Demucs stems on the one GPU worker: the splitter (:mod:`.splitter`), which stems to keep and mixing
(:mod:`.mixing`), stem sets on disk (:mod:`.folders`) and the two stem jobs (:mod:`.service`)."""
