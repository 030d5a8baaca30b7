"""The MQTT ingest (issue 10): subscribe to the instruments' topics and store what arrives,
in batches, through :func:`vein2vein.services.telemetry.ingest`. The only module that
imports paho.

Nothing is lost and nothing doubled:

* the subscription is QoS 1 in a persistent MQTT 5 session (``clean_start=False`` and a
  session expiry of a week under a fixed client id), so the broker keeps what arrives
  while the ingest is away;
* a message is acknowledged only once its batch is committed (paho's ``manual_ack``): if
  the database refuses a batch, or the ingest stops, the broker delivers it again;
* a reading delivered again is stored once (services/telemetry.py).

paho reconnects by itself (between 1 and 30 s apart) after a broker restart or a network
cut; the session resumes where it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vein2vein.domain.errors import ServiceUnavailable, V2VError
from vein2vein.services import telemetry
from vein2vein.services.app import App

__all__ = [
    "BrokerUnreachable",
    "Ingest",
    "Totals",
    "connect_session",
    "session_client",
    "session_properties",
]


#: How long the broker keeps the session (and what arrives for it) while the ingest is away.
SESSION_EXPIRY_S = 7 * 24 * 3600
#: How many unacknowledged messages the broker may send at once (MQTT 5's Receive Maximum,
#: at its protocol maximum): a batch is acknowledged only once committed, so a small window
#: (MQTT 3.1.1's 20 in Mosquitto) would hold the ingest to a few hundred readings a second.
RECEIVE_MAXIMUM = 65535


def session_properties() -> Properties:
    """CONNECT properties of a persistent session with a wide receive window."""
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    properties.ReceiveMaximum = RECEIVE_MAXIMUM
    return properties


class BrokerUnreachable(ServiceUnavailable):
    """The MQTT broker could not be reached."""


def session_client(
    client_id: str, topic: str, connected: threading.Event,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None],
) -> mqtt.Client:  # fmt: skip
    """A paho client of a persistent MQTT 5 session that acknowledges by hand, subscribes
    to ``topic`` (QoS 1) on every connection and sets ``connected`` once the broker has the
    subscription (what is published from then on is ours); cleared on disconnection."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5, manual_ack=True)  # fmt: skip

    def on_connect(c: mqtt.Client, userdata: object, *_: object) -> None:
        # every connection: the session keeps the subscription, but a broker that lost its
        # state must not leave us deaf
        c.subscribe(topic, qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: connected.set()
    client.on_disconnect = lambda *_: connected.clear()
    client.on_message = on_message
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def connect_session(
    client: mqtt.Client, host: str, port: int, connected: threading.Event, timeout_s: float
) -> None:
    """Connect ``client`` to its persistent session and start its network thread; wait for
    ``connected`` (set once the broker acknowledged its subscription).

    Raises
    ------
    BrokerUnreachable
        Nothing listens at ``host``:``port``, or no answer within ``timeout_s`` seconds.
    """
    try:
        client.connect(host, port, keepalive=30, clean_start=False,
                       properties=session_properties())  # fmt: skip
    except OSError as exc:
        raise BrokerUnreachable(
            f"MQTT broker {host}:{port}: {exc.strerror or exc} (is it running?)"
        ) from None
    client.loop_start()
    if not connected.wait(timeout_s):
        client.disconnect()
        client.loop_stop()
        raise BrokerUnreachable(f"MQTT broker {host}:{port}: no answer within {timeout_s:g} s")


@dataclass(slots=True)
class Totals:
    """Messages received, and what became of them so far."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    batches: int = 0
    failed_batches: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int


class Ingest:
    """Subscribe to ``topic`` (``v2v/#``: every instrument) on the broker at ``host``:
    ``port`` as ``client_id``, and store what arrives in batches of up to ``batch_size``,
    at least every ``flush_s`` seconds. :meth:`start`, then :meth:`run` (or :meth:`flush`
    by hand), then :meth:`stop`."""

    def __init__(
        self,
        app: App,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        client_id: str = "v2v-ingest",
        topic: str = "v2v/#",
        batch_size: int = 2000,
        flush_s: float = 0.2,
    ) -> None:
        self.app, self.host, self.port, self.topic = app, host, port, topic
        self.batch_size, self.flush_s = batch_size, flush_s
        self.totals = Totals()
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._waiting: list[_Message] = []
        self._arrived = threading.Event()
        self._client = session_client(client_id, topic, self.connected, self._on_message)

    # -- paho's thread ---------------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._waiting.append(_Message(message.topic, bytes(message.payload), message.mid,
                                          message.qos))  # fmt: skip
            self.totals.received += 1
            if len(self._waiting) >= self.batch_size:
                self._arrived.set()

    # -- the caller's thread ---------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect and subscribe.

        Raises
        ------
        BrokerUnreachable
            When the broker does not answer within ``timeout_s`` seconds.
        """
        connect_session(self._client, self.host, self.port, self.connected, timeout_s)

    def flush(self) -> int:
        """Store what has arrived, as one batch, and acknowledge it once committed;
        returns how many messages the batch held. A batch the database refuses stays
        unacknowledged and waiting (it is tried again on the next flush)."""
        with self._lock:
            batch, self._waiting = (
                self._waiting[: self.batch_size],
                self._waiting[self.batch_size :],
            )
            if len(self._waiting) < self.batch_size:
                self._arrived.clear()
        if not batch:
            return 0
        try:
            result = telemetry.ingest(self.app, [(m.topic, m.payload) for m in batch])
        except V2VError as refused:
            with self._lock:
                self._waiting[:0] = batch
                self.totals.failed_batches += 1
                self.totals.last_error = refused.message
            return 0
        for m in batch:
            if m.qos > 0:
                self._client.ack(m.mid, m.qos)
        with self._lock:
            t = self.totals
            t.stored += result.stored
            t.duplicates += result.duplicates
            t.quarantined += result.quarantined
            t.batches += 1
            t.last_error = None
        return len(batch)

    def run(
        self, stop: threading.Event, on_flush: Callable[[Totals], None] | None = None
    ) -> Totals:
        """Flush every ``flush_s`` seconds (sooner when a batch is full) until ``stop`` is
        set; then flush what is left and return the totals."""
        while not stop.is_set():
            self._arrived.wait(self.flush_s)
            if self.flush() and on_flush is not None:
                on_flush(self.totals)
            if self.totals.last_error is not None:
                time.sleep(min(5.0, self.flush_s * 10))  # the database is away: not a busy loop
        while self.flush():
            pass
        return self.totals

    def stop(self) -> None:
        """Disconnect (what was not acknowledged is delivered again next time)."""
        self._client.disconnect()
        self._client.loop_stop()
