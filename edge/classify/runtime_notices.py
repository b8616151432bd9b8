"""The TFLite runtime's start-up notice, kept off the terminal.

ai-edge-litert (and tflite-runtime) print `INFO: Created TensorFlow Lite XNNPACK delegate for
CPU.` from C++ straight to file descriptor 2 whenever an interpreter is created: on every
`edge` command that loads a model, and into the journal at every start and model reload. No
environment variable or API of LiteRT 2.x lowers that logger's level (TF_CPP_MIN_LOG_LEVEL
is TensorFlow's, not LiteRT's), and turning the XNNPACK delegate off to silence it would make
inference several times slower. So descriptor 2 is pointed at a temporary file while an
interpreter is built and its tensors allocated (a few milliseconds, once per model load), and
everything written there is put back on stderr afterwards, except these known notices: a real
error from the runtime, or a log line another thread wrote meanwhile, still reaches stderr.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# What the runtime says on every load and that tells an operator nothing.
NOTICES = re.compile(r"^INFO: (Created TensorFlow Lite XNNPACK delegate for CPU\.|"
                     r"Initialized TensorFlow Lite runtime\.)\s*$")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def runtime_notices_hidden():
    """Run the body with fd 2 captured; then write back what was captured, less NOTICES."""
    return stderr_filtered(NOTICES)


@contextmanager
def stderr_filtered(noise: re.Pattern[str]) -> Iterator[None]:
    """Run the body with fd 2 captured; then write back what was captured, less the lines that
    match `noise` (the trainer hides TensorFlow's start-up lines the same way)."""
    _flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a detached process): nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not noise.match(line))
            if kept:
                os.write(2, kept.encode("utf-8"))
