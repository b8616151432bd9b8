"""`collector import FILE`: an `edge export events` file through the same handler as MQTT.

The file is JSON Lines, one published message a line: {"topic": "<prefix>/<device>/events"
(or counts/<species>, status, info), "payload": <the payload as published: a JSON object, or
a string for status>} (docs/fleet.md, "Import"). Each line goes through `collector.messages.parse`
and the same `Sink` batches as the MQTT stream, so importing a file twice, or a file whose
events also came over MQTT, leaves the same rows. A line that is not such an object is kept in
rejected_messages with its line number: nothing is dropped silently, and no line stops the
import (a payload out of bounds is rejected by `parse` as it is from the broker).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from collector.messages import parse, rejected
from collector.sink import Message, Sink, WriteStats

BATCH = 1000


def _lines(handle: IO[str], name: str, prefix: str) -> Iterator[Message]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            topic, payload = record["topic"], record["payload"]
            if not isinstance(topic, str):
                raise TypeError("topic is not a string")
            raw = (payload.encode("utf-8", "surrogatepass") if isinstance(payload, str)
                   else json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
            # ValueError: not JSON, a 5,000-digit integer; RecursionError: nested too deeply.
            yield Message(f"import:{name}", rejected(None, f"import:{name}", line.rstrip("\n").encode("utf-8", "replace"),
                                                      f"line {number}: not a {{topic, payload}} JSON object "
                                                      f"({type(exc).__name__}: {str(exc)[:200]})"))
            continue
        yield Message(topic, parse(topic, raw, prefix), raw)


def import_file(path: Path, sink: Sink, *, prefix: str = "trailcam") -> WriteStats:
    """Load `path` into the sink in transactions of BATCH lines; returns what was written."""
    stats = WriteStats()
    with open(path, encoding="utf-8", errors="replace") as handle:
        batch: list[Message] = []
        for message in _lines(handle, path.name, prefix):
            batch.append(message)
            if len(batch) >= BATCH:
                stats.add(sink.write(batch))
                batch = []
        if batch:
            stats.add(sink.write(batch))
    return stats
