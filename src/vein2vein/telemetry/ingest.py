"""The MQTT ingest (issue 10): subscribe to the instruments' topics and store what arrives,
in batches, through :func:`vein2vein.services.telemetry.ingest`. The only module that
imports paho.

Nothing is lost and nothing doubled:

* the subscription is QoS 1 in a persistent session under a fixed client id (MQTT 5:
  ``clean_start=False`` and a session expiry of a week; 3.1.1: ``clean_session=False``),
  so the broker keeps what arrives while the ingest is away;
* a message is acknowledged only once its batch is committed (paho's ``manual_ack``): if
  the database refuses a batch, or the ingest stops, the broker delivers it again;
* a reading delivered again is stored once (services/telemetry.py).

After a broker restart or a network cut the ingest reconnects by itself (at once, then 1 s,
2 s, 4 s … up to 30 s apart while attempts fail); the session resumes where it was. What
had arrived but was not yet stored is dropped then: the broker delivers it again.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from vein2vein.domain.errors import InvalidInput, ServiceUnavailable, V2VError
from vein2vein.services import telemetry
from vein2vein.services.app import App

__all__ = [
    "MQTT_VERSIONS",
    "BrokerUnreachable",
    "Ingest",
    "Totals",
    "connect",
    "connect_session",
    "mqtt_protocol",
    "session_client",
    "session_properties",
]


#: Seconds between pings when nothing else is sent; the broker drops a client silent for
#: one and a half of them.
KEEPALIVE_S = 60
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


#: The MQTT versions a session may speak. 5 is the default: the client sets its receive
#: window. 3.1.1 costs paho about a sixth less per message (no properties to parse), but the
#: broker alone sets the window: Mosquitto needs ``max_inflight_messages 0`` for it, or holds
#: each session to 20 unacknowledged messages (docs/telemetry.md).
MQTT_VERSIONS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}


def mqtt_protocol(mqtt_version: str) -> MQTTProtocolVersion:
    """paho's number for ``mqtt_version``.

    Raises
    ------
    InvalidInput
        For a version not in :data:`MQTT_VERSIONS`.
    """
    if mqtt_version not in MQTT_VERSIONS:
        raise InvalidInput(f"MQTT version {mqtt_version!r}: expected one of "
                           f"{', '.join(MQTT_VERSIONS)}")  # fmt: skip
    return MQTT_VERSIONS[mqtt_version]


def session_client(
    client_id: str, topic: str, connected: threading.Event,
    on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None],
    mqtt_version: str = "5",
) -> mqtt.Client:  # fmt: skip
    """A paho client of a persistent session that acknowledges by hand, subscribes to
    ``topic`` (QoS 1) on every connection and sets ``connected`` once the broker has the
    subscription (what is published from then on is ours); cleared on disconnection.

    Raises
    ------
    InvalidInput
        For an ``mqtt_version`` not in :data:`MQTT_VERSIONS`.
    """
    protocol = mqtt_protocol(mqtt_version)
    # MQTT 5 asks for a persistent session when connecting (clean_start), 3.1.1 here
    clean_session = None if protocol == mqtt.MQTTv5 else False
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         clean_session=clean_session, manual_ack=True)  # fmt: skip

    def on_connect(c: mqtt.Client, userdata: object, *_: object) -> None:
        # every connection: the session keeps the subscription, but a broker that lost its
        # state must not leave us deaf
        c.subscribe(topic, qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: connected.set()
    client.on_disconnect = lambda *_: connected.clear()
    client.on_message = on_message
    client.reconnect_delay_set(min_delay=1, max_delay=30)  # paho's thread (the monitor)
    return client


def connect(client: mqtt.Client, host: str, port: int) -> None:
    """Open ``client``'s connection to its persistent session (CONNECT sent, not yet
    answered).

    Raises
    ------
    BrokerUnreachable
        Nothing listens at ``host``:``port``.
    """
    try:
        if client.protocol == mqtt.MQTTv5:
            client.connect(host, port, keepalive=KEEPALIVE_S, clean_start=False,
                           properties=session_properties())  # fmt: skip
        else:  # 3.1.1: the session is persistent as the client was made (clean_session)
            client.connect(host, port, keepalive=KEEPALIVE_S)
    except OSError as exc:
        raise BrokerUnreachable(
            f"MQTT broker {host}:{port}: {exc.strerror or exc} (is it running?)"
        ) from None


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
    connect(client, host, port)
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


class Ingest:
    """Subscribe to ``topic`` (``v2v/#``: every instrument) on the broker at ``host``:
    ``port`` as ``client_id``, and store what arrives in batches of up to ``batch_size``,
    at least every ``flush_s`` seconds. :meth:`start`, then :meth:`run`, then :meth:`stop`,
    all from one thread.

    That one thread does everything: it reads what the broker sent (at most a batch), stores
    the batch when due and acknowledges it, then reads again (paho's own-loop interface:
    ``loop_read``, ``loop_write``, ``loop_misc``). While a batch is stored the broker holds
    what follows, and nothing answers its pings: a store longer than one and a half
    keep-alives (:data:`KEEPALIVE_S`) costs a reconnection and a redelivery, nothing more;
    so does a database away while a full batch waits (nothing more is read, the answers to
    the pings included). Two threads would only take turns on the interpreter lock, and each
    acknowledgement handed to paho's thread would wake it once.
    """

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
        mqtt_version: str = "5",
    ) -> None:
        if batch_size < 1 or not flush_s > 0:
            raise InvalidInput(f"ingest: batch_size must be at least 1 (got {batch_size}) and "
                               f"flush_s above 0 (got {flush_s})")  # fmt: skip
        self.app, self.host, self.port, self.topic = app, host, port, topic
        self.batch_size, self.flush_s = batch_size, flush_s
        self.totals = Totals()
        self.connected = threading.Event()
        self._waiting: list[tuple[str, bytes, int]] = []  # topic, payload, packet id (0: QoS 0)
        self._first_at = 0.0  # when the oldest waiting message arrived (monotonic)
        self._client = session_client(client_id, topic, self.connected, self._on_message,
                                      mqtt_version)  # fmt: skip
        # acknowledgements are written once per batch, by run(), not one at a time
        self._client.on_socket_register_write = lambda *_: None
        self._client.on_disconnect = lambda *_: self._lost()
        self._retry_at = 0.0  # no reconnection attempt before (monotonic)
        self._delay = _MIN_DELAY_S

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if not self._waiting:
            self._first_at = time.monotonic()
        # one append: a Ctrl-C between two would leave a message half there
        self._waiting.append((message.topic, bytes(message.payload),
                              message.mid if message.qos > 0 else 0))  # fmt: skip
        self.totals.received += 1

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect and subscribe; returns once the broker has acknowledged the
        subscription (what is published from then on is ours).

        Raises
        ------
        BrokerUnreachable
            When the broker refuses the connection, closes it, or does not answer within
            ``timeout_s`` seconds.
        """
        connect(self._client, self.host, self.port)
        deadline = time.monotonic() + timeout_s
        while not self.connected.is_set():
            left = deadline - time.monotonic()
            rc = self._pump(min(left, 0.1)) if left > 0 else mqtt.MQTT_ERR_SUCCESS
            if left <= 0 or rc:
                self._close()
                why = f"no answer within {timeout_s:g} s"
                if rc:
                    why = f"the connection was refused or closed ({mqtt.error_string(rc)})"
                raise BrokerUnreachable(f"MQTT broker {self.host}:{self.port}: {why}")

    def _pump(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for the broker; read what it sent (until a batch
        waits) and write what waits; an MQTT error code (0: all well)."""
        client = self._client
        sock = client.socket()
        if sock is None:
            return mqtt.MQTT_ERR_NO_CONN
        poll = select.poll()
        poll.register(sock, select.POLLIN | (select.POLLOUT if client.want_write() else 0))
        room = self.batch_size - len(self._waiting)
        events = poll.poll(timeout_s * 1000)
        rc: int = mqtt.MQTT_ERR_SUCCESS
        if events and events[0][1] & ~select.POLLOUT and room > 0:
            # paho reads one packet a call: read on until a call brings no message, or a
            # batch waits (what is not read stays with the broker, not in this memory)
            for _ in range(room):
                before = self.totals.received
                rc = client.loop_read()
                if rc or self.totals.received == before:
                    break
        if not rc and client.want_write():
            rc = client.loop_write()
        return rc or client.loop_misc()  # keep-alive pings

    def _lost(self) -> None:
        """The connection is lost (or closed): what waits unstored is dropped, not
        acknowledged; the broker delivers it again once reconnected."""
        self.connected.clear()
        self._waiting.clear()

    def _reconnect(self) -> None:
        """Connect again: at once after a loss, then 1 s, 2 s, 4 s … up to 30 s apart while
        attempts fail (refused, or closed before the subscription was acknowledged)."""
        now = time.monotonic()
        if now < self._retry_at:
            return
        self._retry_at = now + self._delay
        self._delay = min(self._delay * 2, _MAX_DELAY_S)
        with contextlib.suppress(OSError):  # nothing listens: the next attempt says more
            self._client.reconnect()

    def _write_out(self, within_s: float) -> None:
        """Write what waits to be written (acknowledgements, DISCONNECT) for at most
        ``within_s`` seconds; reads nothing."""
        client = self._client
        deadline = time.monotonic() + within_s
        while client.want_write() and (sock := client.socket()) is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            poll = select.poll()
            poll.register(sock, select.POLLOUT)
            if poll.poll(min(left, 0.1) * 1000) and client.loop_write():
                break

    def _close(self) -> None:
        """Disconnect cleanly if possible (the session stays with the broker)."""
        if self._client.socket() is not None:
            self._client.disconnect()
            self._write_out(2.0)
        self._lost()

    def flush(self) -> int:
        """Store what has arrived (up to ``batch_size`` messages) as one batch, and
        acknowledge it once committed; returns how many messages the batch held. A batch
        the database refuses stays unacknowledged and waiting (tried again next time)."""
        batch = self._waiting[: self.batch_size]
        if not batch:
            return 0
        try:
            result = telemetry.ingest(self.app, [(topic, payload) for topic, payload, _ in batch])
        except V2VError as refused:
            self.totals.failed_batches += 1
            self.totals.last_error = refused.message
            return 0
        del self._waiting[: len(batch)]  # the rest arrived later: _first_at still bounds it
        ack = self._client.ack
        for _, _, mid in batch:
            if mid:
                ack(mid, 1)
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
        """Read and store until ``stop`` is set: a batch when ``batch_size`` messages
        wait, or ``flush_s`` after the oldest arrived; reconnect when the broker is lost.
        Then store what is left, write its acknowledgements, and return the totals."""
        while not stop.is_set():
            if self.connected.is_set():
                self._delay = _MIN_DELAY_S
            due = self._first_at + self.flush_s - time.monotonic() if self._waiting else 0.2
            if self._client.socket() is None:
                self._reconnect()
                stop.wait(min(0.2, max(due, 0.0)))
            elif self._pump(max(0.0, min(due, 0.2))):
                self._close()  # paho closed it, or it is no use: the next turn reconnects
            if self._waiting and (len(self._waiting) >= self.batch_size
                                 or time.monotonic() - self._first_at >= self.flush_s):  # fmt: skip
                if self.flush() and on_flush is not None:
                    on_flush(self.totals)
                if self.totals.last_error is not None:  # the database is away: not a busy loop
                    stop.wait(min(5.0, self.flush_s * 10))
        while self.flush():
            pass
        self._write_out(5.0)  # the last acknowledgements; nothing more is read
        return self.totals

    def stop(self) -> None:
        """Disconnect (what was not acknowledged is delivered again next time)."""
        self._close()


_MIN_DELAY_S, _MAX_DELAY_S = 1.0, 30.0
