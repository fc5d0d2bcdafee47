"""What the server and the worker process print: libraries' chatter about their own internals is kept out."""
from __future__ import annotations

import logging
import warnings


def quiet_libraries() -> None:
    """Silence what libraries print about their internals at every model load, which the user cannot act on.

    audiocraft logs each new codebook pattern at INFO, and its codec layers use
    ``torch.nn.utils.weight_norm``, which torch flags with a FutureWarning on every load.
    """
    logging.getLogger("audiocraft").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*torch\.nn\.utils\.weight_norm.* is deprecated",
                            category=FutureWarning)
