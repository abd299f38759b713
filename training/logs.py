"""Where the libraries' chatter goes: into a run's log file, not the user's terminal.

TensorFlow and tf2onnx log deprecation notices and progress through Python's `logging` (and
`warnings`) while a model is converted; a command keeps the user's terminal to its own summary
lines and sends those messages to a file beside the run instead.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

# The loggers that print on their own (TensorFlow adds a console handler to its logger).
LIBRARY_LOGGERS = ("tensorflow", "tf2onnx", "absl", "py.warnings")


@contextlib.contextmanager
def into_file(path: Path):
    """While the block runs, every Python log record and warning goes to ``path`` (appended) and
    none to the console. If ``path`` cannot be written, nothing changes."""
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        yield None
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in LIBRARY_LOGGERS)]
    saved = [(logger, list(logger.handlers), logger.propagate) for logger in loggers]
    saved_level = root.level
    for logger in loggers:
        logger.handlers = []
        logger.propagate = logger is not root
    root.addHandler(handler)
    root.setLevel(min(saved_level or logging.WARNING, logging.INFO))
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved_level)
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate
