"""The collector's paho client: a leaner receive path and one write for a batch's acknowledgements.

Why it exists: with MQTT 5, paho 2's receive path cost about as much CPU as everything else the
collector does with a message (docs/benchmarks.md, "Fleet"). Per PUBLISH it made four `recv`
calls (the command byte, each remaining-length byte, the rest), went back to `select()` after
every packet (`loop_read` reads one packet when nothing of ours is in flight), and built and
cleared a `Properties` object even when the packet carries none; per acknowledgement it built a
packet, woke the network thread through its socket pair and wrote the 4 bytes with their own
`send`. `LeanClient` changes exactly these, and nothing in what a message means:

- Reads go through a buffer: one `recv` of up to 64 KiB serves the small reads paho's packet
  reader makes. The buffer belongs to one socket (a new connection starts empty), and
  `loop_read` keeps reading until the socket has nothing more and the buffer is empty, so no
  buffered byte waits for a `select()` that will not fire.
- A QoS 1 PUBLISH with no properties (a device's message), with manual acknowledgement on, is
  decoded here into the same `MQTTMessage` paho builds (topic bytes, payload, mid, qos, dup,
  retain, timestamp; `properties` None for MQTT 3.1.1 as in paho, an empty `Properties` shared
  read-only for MQTT 5) and handed to paho's own dispatch (`_handle_on_message`). Anything else
  (QoS 0 or 2, properties present, a malformed header) goes to paho's `_handle_publish`.
- `ack_many(mids)`: the PUBACKs of a committed batch (each the 4 bytes paho's `ack` sends, in
  the order given, which is the order the messages came) queued as one write.

These use paho's private members (`_sock_recv`, `_packet_read`, `_handle_publish`,
`_handle_on_message`, `_packet_queue`, `_in_packet`, `_manual_ack`, `_protocol`, `_sock`).
`lean_supported()` checks the paho version (2.2 is the one tested; the collector extra also
allows 2.0, whose private methods differ, and 2.1, not checked) and that each member exists;
otherwise `make_client` returns a plain `paho.Client` and `ack_many` falls back
to one `ack` per message. tests/collector/test_mqtt_client.py pins the behaviour on a real broker
against a plain client.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt import __version__ as PAHO_VERSION
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

READ_SIZE = 64 * 1024
TESTED_PAHO = ("2.2.",)  # paho 2.0 decodes PUBLISH and queues packets differently: plain paho there
_PRIVATE = ("_sock_recv", "_packet_read", "_handle_publish", "_handle_on_message", "_packet_queue", "_loop_rc_handle")
_PUBACK = struct.Struct("!BBH")
_PUBACK_COMMAND = 0x40  # PUBACK, remaining length 2, then the packet id (MQTT 3.1.1 and 5: reason 0 left out)
_READ_PACKETS = 1000  # packets one loop_read takes before paho's loop may write and ping (buffer empty)


def lean_supported(version: str | None = None) -> bool:
    """Whether this paho is one LeanClient was tested with and has every member it relies on."""
    version = PAHO_VERSION if version is None else version
    return version.startswith(TESTED_PAHO) and all(callable(getattr(paho.Client, name, None)) for name in _PRIVATE)


class LeanClient(paho.Client):
    """paho.Client with a buffered, batched receive path and `ack_many` (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self._rbuf_sock: Any = None  # the socket the buffered bytes came from
        self._no_properties = Properties(PacketTypes.PUBLISH)

    # -- reading ------------------------------------------------------------------------------
    def _sock_recv(self, bufsize: int) -> bytes:
        sock = self._sock
        if sock is not self._rbuf_sock:  # a new connection: nothing of the old one may be read
            self._rbuf.clear()
            self._rbuf_sock = sock
        buf = self._rbuf
        if not buf:
            data = super()._sock_recv(max(bufsize, READ_SIZE))  # BlockingIOError / b"" pass through
            if len(data) <= bufsize:
                return data
            buf += data
        chunk = bytes(buf[:bufsize])
        del buf[:bufsize]
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read packets until the socket has no more (paho's reads one when nothing is in flight)."""
        packets = 0
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                if self._rbuf:  # paho paused a long packet (its 100 reads); the rest is ours, not select()'s
                    continue
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            packets += 1
            if packets >= _READ_PACKETS and not self._rbuf:  # the rest, if any, wakes select()
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_publish(self) -> MQTTErrorCode:
        header: int = self._in_packet["command"]
        packet = self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if qos != 1 or not self._manual_ack or len(packet) < 5:
            return super()._handle_publish()
        slen = (packet[0] << 8) | packet[1]
        pos = 2 + slen
        if slen == 0 or len(packet) < pos + 2:
            return super()._handle_publish()  # paho's own checks and errors
        mid = (packet[pos] << 8) | packet[pos + 1]
        pos += 2
        properties = None
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            if len(packet) <= pos or packet[pos] != 0:  # properties present (or none to read): paho's decoder
                return super()._handle_publish()
            pos += 1
            properties = self._no_properties
        message = paho.MQTTMessage(mid=mid, topic=bytes(packet[2:2 + slen]))
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.properties = properties
        message.payload = bytes(packet[pos:])
        message.timestamp = paho.time_func()
        self._handle_on_message(message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS  # manual acknowledgement: ack_many sends the PUBACK

    # -- acknowledging ------------------------------------------------------------------------
    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK each QoS 1 message id, in the order given, as one write."""
        if not mids or not self._manual_ack:
            return
        packet = b"".join([_PUBACK.pack(_PUBACK_COMMAND, 2, mid) for mid in mids])
        self._packet_queue(_PUBACK_COMMAND, packet, 0, 0)


def make_client(*args: Any, lean: bool = True, **kwargs: Any) -> paho.Client:
    """A LeanClient where this paho supports it (and `lean`), else a plain paho.Client."""
    if lean and lean_supported():
        return LeanClient(*args, **kwargs)
    return paho.Client(*args, **kwargs)


def ack_many(client: paho.Client, mids: Sequence[int]) -> None:
    """Acknowledge QoS 1 messages in order: one write with a LeanClient, one `ack` each otherwise."""
    if isinstance(client, LeanClient):
        client.ack_many(mids)
    else:
        for mid in mids:
            client.ack(mid, 1)
