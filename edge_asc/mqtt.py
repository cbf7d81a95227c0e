"""MQTT: what the listener hears, published for the rest of the house, with Home Assistant
discovery.

Topics, under `edge-asc/<node>` (the node id is `--name`, by default the host name):
- `availability`: `online` (retained) once connected; `offline` as the retained last will, so a
  listener that dies or loses its network is shown as unavailable, and on a clean stop;
- `sound`, `confidence`, `level`: the current smoothed label, its confidence (%) and the input
  level (dBFS), retained, at most once a second;
- `event`: `{"type": "start" | "update" | "end", ...event fields}` (QoS 1, not retained), after
  the per-class cooldown and minimum confidence (so a barking dog is not 4,000 notifications);
- `<class>/state`: `ON` while an event of that class lasts, else `OFF` (retained);
- `ha_event`: `{"event_type": <class>, ...}` at each published start, for Home Assistant's
  `event` entity.

Discovery (`homeassistant/...`, configurable): one device with sensors for the sound, confidence
and level, a binary_sensor (device_class sound) per class and an `event` entity whose event
types are the classes; every entity has its own state topic, a `unique_id`, the `device` and
the `availability` topic, and all of it is published again when Home Assistant announces
`online` on `<prefix>/status`.

The client runs in paho's own thread: publishing only queues a message, so the audio path never
waits for the network. paho reconnects with a backoff from 1 s to 5 min; while the broker is
away at most MAX_QUEUED QoS 1 messages wait (the events themselves are in SQLite with --db).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from edge_asc.errors import EdgeAscError, warn
from edge_asc.events import Event, NotifyPolicy

if TYPE_CHECKING:
    from edge_asc.prediction import Prediction

MAX_QUEUED = 500
STATE_INTERVAL_S = 1.0  # the current sound at most this often
UPDATE_INTERVAL_S = 10.0  # an event in progress: an update at most this often
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 300
CLOSE_WAIT_S = 3.0  # a clean stop waits this long at most for queued messages to go out


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_url(url: str) -> BrokerAddress:
    """mqtt://[user[:password]@]host[:port] (1883) or mqtts://... (8883, TLS); EdgeAscError
    in one line for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise EdgeAscError(
            f"--mqtt must be mqtt://[user[:password]@]host[:port] or mqtts://... (got {url!r})"
        )
    try:
        port = parts.port
    except ValueError:
        raise EdgeAscError(f"--mqtt: the port of {url!r} is not a number from 1 to 65535") from None
    if parts.path not in ("", "/") or parts.query:
        raise EdgeAscError(f"--mqtt takes a broker, not a path or query (got {url!r})")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        parts.hostname,
        port or (8883 if tls else 1883),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        tls,
    )


def node_id(name: str | None) -> str:
    """A topic- and id-safe node name: `name`, or the host name, lower case, [a-z0-9_-]."""
    raw = name if name is not None else socket.gethostname()
    clean = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-")
    if not clean:
        raise EdgeAscError(f"--name must have a letter or digit (got {raw!r})")
    return clean


@dataclass(frozen=True)
class MqttOptions:
    address: BrokerAddress
    node: str
    labels: tuple[str, ...]
    model_id: str
    ha_prefix: str = "homeassistant"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    cooldown_s: float = 30.0  # after a published start, that class's next start waits this long
    min_confidence: float = 0.0  # an event whose peak is lower is not published
    version: str = ""

    @property
    def base(self) -> str:
        return f"edge-asc/{self.node}"


def discovery(options: MqttOptions) -> dict[str, dict[str, Any]]:
    """Home Assistant discovery topic -> payload, for every entity of the node."""
    base, node, prefix = options.base, options.node, options.ha_prefix
    device = {
        "identifiers": [f"edge_asc_{node}"],
        "name": f"edge-asc {node}",
        "manufacturer": "edge-asc",
        "model": options.model_id,
        "sw_version": options.version,
    }
    common = {
        "availability": [{"topic": f"{base}/availability"}],
        "device": device,
    }
    configs: dict[str, dict[str, Any]] = {
        f"{prefix}/sensor/{node}/sound/config": {
            "name": "Sound",
            "unique_id": f"edge_asc_{node}_sound",
            "state_topic": f"{base}/sound",
            "icon": "mdi:ear-hearing",
        },
        f"{prefix}/sensor/{node}/confidence/config": {
            "name": "Confidence",
            "unique_id": f"edge_asc_{node}_confidence",
            "state_topic": f"{base}/confidence",
            "unit_of_measurement": "%",
            "state_class": "measurement",
        },
        f"{prefix}/sensor/{node}/level/config": {
            "name": "Level",
            "unique_id": f"edge_asc_{node}_level",
            "state_topic": f"{base}/level",
            "unit_of_measurement": "dBFS",
            "state_class": "measurement",
        },
        f"{prefix}/event/{node}/detection/config": {
            "name": "Detection",
            "unique_id": f"edge_asc_{node}_detection",
            "state_topic": f"{base}/ha_event",
            "event_types": list(options.labels),
        },
    }
    for label in options.labels:
        configs[f"{prefix}/binary_sensor/{node}/{label}/config"] = {
            "name": label.replace("_", " ").capitalize(),
            "unique_id": f"edge_asc_{node}_{label}",
            "state_topic": f"{base}/{label}/state",
            "device_class": "sound",
            "payload_on": "ON",
            "payload_off": "OFF",
        }
    return {topic: {**payload, **common} for topic, payload in configs.items()}


def make_client(
    options: MqttOptions,
    on_connect: Callable[[], None],
    on_fail: Callable[[str], None] = lambda why: None,
) -> Any:
    """A paho client with the last will, the reconnect backoff, the queue limit and TLS set
    (not connected yet: `start`); EdgeAscError in one line for unusable TLS files. `on_fail`
    gets why a connection could not be made (refused, TLS, a wrong password): paho itself only
    retries, silently."""
    import paho.mqtt.client as paho

    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=f"edge-asc-{options.node}", clean_session=True
    )
    address = options.address
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    client.will_set(f"{options.base}/availability", "offline", qos=1, retain=True)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    client.max_queued_messages_set(MAX_QUEUED)
    if address.tls:
        try:
            context = ssl.create_default_context(
                cafile=str(options.ca_file) if options.ca_file else None
            )
            if options.cert_file:
                context.load_cert_chain(
                    str(options.cert_file), str(options.key_file) if options.key_file else None
                )
        except (OSError, ssl.SSLError) as err:
            raise EdgeAscError(
                f"--mqtt TLS: cannot use the CA or certificate files: {err}"
            ) from err
        client.tls_set_context(context)

    def connected(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:  # the broker answered no: a wrong password, not authorized
            on_fail(f"the broker refused the connection: {reason}{_hint(reason)}")
        else:
            on_connect()

    def failed(client: Any, userdata: Any) -> None:
        # paho calls this inside its `except OSError`, so the error is the one being handled.
        on_fail(_why(sys.exc_info()[1]))

    client.on_connect = connected
    client.on_connect_fail = failed
    return client


def _hint(reason: Any) -> str:
    """What to check when the broker says no to the credentials (MQTT 5 codes: paho maps the
    3.1.1 ones to them)."""
    bad_credentials = {134, 135}  # bad user name or password; not authorized
    return " (check the user and password in --mqtt)" if reason.value in bad_credentials else ""


def _why(err: BaseException | None) -> str:
    """A connection error in a few words: TLS's own reason when it is one."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS: {err.verify_message} (check --mqtt-ca)"
    if isinstance(err, ssl.SSLError):
        return f"TLS: {err.reason or err}"
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return "the connection failed"


def start(client: Any, address: BrokerAddress) -> None:
    """Connect in paho's thread (retrying with the backoff); returns at once."""
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()


@dataclass
class _Notices:
    """Say once that the broker is away and once that it is back, not at every retry."""

    notify: Callable[[str], None]
    where: str
    away: bool = False
    connected_once: bool = False

    def up(self) -> None:
        if not self.connected_once:
            self.notify(f"connected to the MQTT broker {self.where}")
        elif self.away:
            self.notify(f"the MQTT broker {self.where} is back")
        self.away, self.connected_once = False, True

    def failed(self, why: str) -> None:
        """A connection attempt failed: said once, unless the loss was said already."""
        if not self.away:
            self.away = True
            self.notify(
                f"cannot connect to the MQTT broker {self.where}: {why}; retrying every "
                f"{RECONNECT_MIN_S} s to {RECONNECT_MAX_S // 60} min"
            )

    def down(self) -> None:
        if not self.away:
            self.away = True
            self.notify(
                f"lost the MQTT broker {self.where}; reconnecting every {RECONNECT_MIN_S} s "
                f"to {RECONNECT_MAX_S // 60} min, events are kept in the history (--db)"
            )


class MqttPublisher:
    """Watches the stream and its events (EventSink calls `window`) and publishes them."""

    def __init__(
        self,
        options: MqttOptions,
        min_duration_s: float = 0.0,
        notify: Callable[[str], None] = warn,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options, self.min_duration_s, self.clock = options, min_duration_s, clock
        self._last: Prediction | None = None
        self._lock = threading.Lock()
        self._states: dict[str, str] = dict.fromkeys(options.labels, "OFF")
        self._current: dict[str, str] = {}  # sound, confidence, level: the last published
        self._last_state = -float("inf")
        self._policy = NotifyPolicy(options.cooldown_s, options.min_confidence)
        self._started: dict[str, float] = {}  # published event id -> last publish (clock)
        where = f"{options.address.host}:{options.address.port}"
        self._notices = _Notices(notify, where)
        self._closing = False
        self._client = make_client(options, self._on_connect, self._notices.failed)
        self._client.on_disconnect = self._on_disconnect
        start(self._client, options.address)

    # --- paho's thread ---------------------------------------------------------------------

    def _on_connect(self) -> None:
        """Online, the discovery and every current state again (a broker that restarted
        without persistence has lost the retained ones), and listen for Home Assistant."""
        self._notices.up()
        prefix = self.options.ha_prefix
        self._client.subscribe(f"{prefix}/status", qos=1)
        self._client.message_callback_add(f"{prefix}/status", self._on_ha_status)
        self._publish(f"{self.options.base}/availability", "online", retain=True)
        self._announce()

    def _on_disconnect(self, *args: Any) -> None:
        if not self._closing:
            self._notices.down()

    def _on_ha_status(self, client: Any, userdata: Any, message: Any) -> None:
        if message.payload == b"online":
            self._announce()

    def _announce(self) -> None:
        for topic, payload in discovery(self.options).items():
            self._publish(topic, json.dumps(payload), retain=True)
        with self._lock:
            states, current = dict(self._states), dict(self._current)
        base = self.options.base
        for label, state in states.items():
            self._publish(f"{base}/{label}/state", state, retain=True)
        for name, value in current.items():
            self._publish(f"{base}/{name}", value, retain=True)

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain)  # queued, never blocks

    # --- the audio path ----------------------------------------------------------------------

    def window(self, pred: Prediction | None, ended: list[Event], current: Event | None) -> None:
        """One prediction (None: the stream ended), the events it ended, the one in progress."""
        base = self.options.base
        now = self.clock()
        if pred is not None:
            self._last = pred
            if now - self._last_state >= STATE_INTERVAL_S:
                self._last_state = now
                self._set_current(pred)
        for event in ended:
            if self._started.pop(event.id, None) is not None:
                self._publish(f"{base}/event", json.dumps({"type": "end", **event.to_dict()}))
            self._set_state(event.label, "OFF")
        if current is None or current.duration_s < self.min_duration_s - 1e-9:
            return
        if current.id not in self._started:
            if self._policy.worth_telling(current):
                self._started[current.id] = now
                self._policy.told(current)
                self._publish(f"{base}/event", json.dumps({"type": "start", **current.to_dict()}))
                payload = {"event_type": current.label, **current.to_dict()}
                self._publish(f"{base}/ha_event", json.dumps(payload))
            self._set_state(current.label, "ON")
        elif now - self._started[current.id] >= UPDATE_INTERVAL_S:
            self._started[current.id] = now
            self._publish(f"{base}/event", json.dumps({"type": "update", **current.to_dict()}))

    def _set_current(self, pred: Prediction) -> None:
        values = {
            "sound": pred.smoothed_label,
            "confidence": f"{100 * pred.smoothed_confidence:.1f}",
            "level": f"{pred.dbfs:.1f}",
        }
        with self._lock:
            self._current = values
        for name, value in values.items():
            self._publish(f"{self.options.base}/{name}", value, retain=True)

    def _set_state(self, label: str, state: str) -> None:
        with self._lock:
            if self._states.get(label) == state:
                return
            self._states[label] = state
        self._publish(f"{self.options.base}/{label}/state", state, retain=True)

    def close(self) -> None:
        """A clean stop: the last state, `offline`, and a short wait for what is queued."""
        if self._last is not None:
            self._set_current(self._last)
        info = self._client.publish(
            f"{self.options.base}/availability", "offline", qos=1, retain=True
        )
        deadline = time.monotonic() + CLOSE_WAIT_S
        # Not connected (rc != 0): nothing goes out now, and is_published() would raise.
        while info.rc == 0 and not info.is_published() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
