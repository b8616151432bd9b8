"""A Publisher alone in a process, for kill/SIGTERM tests before (and besides) the daemon.

    python -m tests.edge.publish.publisher_proc '<MqttConfig JSON>' DB_PATH DEVICE_ID

Prints READY once started; SIGTERM stops it cleanly (drain, `stopped`) and exits 0.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

from edge.config.mqtt import MqttConfig
from edge.publish.mqtt import Publisher


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    config = MqttConfig(**json.loads(sys.argv[1]))
    publisher = Publisher(config, sys.argv[2], sys.argv[3])
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    publisher.start()
    print("READY", flush=True)
    done.wait()
    publisher.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
