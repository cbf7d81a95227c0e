"""MQTT against a real mosquitto broker (Debian's package) that these tests start and stop on a
loopback port: Home Assistant discovery, the state and event messages of real shared clips
replayed through `listen`, a broker restart under a running listener, two listeners side by
side."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import pytest
import soundfile as sf
from listener import Listener, edge_asc
from replay import SEQUENCE, join_clips

from edge_asc.errors import EdgeAscError
from edge_asc.history import read_events
from edge_asc.model import Model
from edge_asc.mqtt import parse_url

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
LABELS = [label for _, label in SEQUENCE]
pytestmark = pytest.mark.skipif(
    not Path(MOSQUITTO).exists(), reason="mosquitto is not installed (apt-get install mosquitto)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """mosquitto on 127.0.0.1:port, no persistence (a restart forgets every retained message)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read()
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    running = Broker(tmp_path)
    running.start()
    try:
        yield running
    finally:
        running.stop()


class Subscriber:
    """A real client subscribed to everything: (topic, payload, retained) as they arrive."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def got(self) -> list[tuple[str, str, bool]]:
        with self._lock:
            return list(self.messages)

    def payloads(self, topic: str) -> list[str]:
        return [p for t, p, _ in self.got() if t == topic]

    def wait(self, condition, timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.got()[-20:]}"
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def sequence(shared_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mqtt") / "sequence.flac"
    join_clips(shared_data, [clip for clip, _ in SEQUENCE], path)
    return path


def events_of(sub: Subscriber, node: str) -> list[dict]:
    return [json.loads(p) for p in sub.payloads(f"edge-asc/{node}/event")]


def test_replayed_clips_give_discovery_states_and_events(broker, sequence, tmp_path):
    live = Subscriber(broker.port)
    time.sleep(0.3)
    db = tmp_path / "h.db"
    args = ["listen", "--from-file", str(sequence), "--fast", "--display", "none"]
    run = edge_asc(*args, "--mqtt", broker.url, "--name", "Garden Pi", "--db", str(db))
    assert run.returncode == 0, run.stderr
    node = "garden-pi"
    live.wait(lambda: live.payloads(f"edge-asc/{node}/availability")[-1:] == ["offline"])
    sent = events_of(live, node)
    starts = [e for e in sent if e["type"] == "start"]
    ends = [e for e in sent if e["type"] == "end"]
    assert [e["label"] for e in starts] == LABELS  # the clips' classes, in the order played
    assert [e["label"] for e in ends] == LABELS
    stored = read_events(db)
    assert [e["id"] for e in ends] == [e.id for e in stored]  # the same events as the history
    assert [e["peak_confidence"] for e in ends] == [round(e.peak_confidence, 6) for e in stored]
    ha = [json.loads(p)["event_type"] for p in live.payloads(f"edge-asc/{node}/ha_event")]
    assert ha == LABELS
    for label in LABELS:
        assert live.payloads(f"edge-asc/{node}/{label}/state") == ["OFF", "ON", "OFF"]
    assert not [t for t, _, retained in live.got() if t.endswith("/event") and retained]
    live.close()

    # What Home Assistant finds when it connects later: the retained discovery and states.
    later = Subscriber(broker.port)
    model = Model()
    configs = {
        t: json.loads(p) for t, p, retained in _settle(later) if t.startswith("homeassistant/")
    }
    expected_topics = {
        f"homeassistant/sensor/{node}/{what}/config" for what in ("sound", "confidence", "level")
    }
    expected_topics |= {f"homeassistant/binary_sensor/{node}/{c}/config" for c in model.labels}
    expected_topics |= {f"homeassistant/event/{node}/detection/config"}
    assert set(configs) == expected_topics
    state_topics = [c["state_topic"] for c in configs.values()]
    assert len(set(state_topics)) == len(state_topics)  # each entity its own state topic
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)
    for config in configs.values():
        assert config["availability"] == [{"topic": f"edge-asc/{node}/availability"}]
        assert config["device"]["identifiers"] == [f"edge_asc_{node}"]
        assert config["name"]
    for label in model.labels:
        binary = configs[f"homeassistant/binary_sensor/{node}/{label}/config"]
        assert binary["device_class"] == "sound"
        assert (binary["payload_on"], binary["payload_off"]) == ("ON", "OFF")
    event_entity = configs[f"homeassistant/event/{node}/detection/config"]
    assert event_entity["event_types"] == list(model.labels)
    retained = {t: p for t, p, r in later.got() if r}
    for config in configs.values():  # no entity sits at "unknown": every state is retained
        if config is not event_entity:
            assert config["state_topic"] in retained, config["state_topic"]
    assert retained[f"edge-asc/{node}/availability"] == "offline"
    assert retained[f"edge-asc/{node}/sound"] == "silence"  # the replay ends in silence
    later.close()


def _settle(sub: Subscriber, quiet: float = 0.5) -> list[tuple[str, str, bool]]:
    """Every message until none has come for `quiet` seconds."""
    seen = -1
    while len(sub.got()) != seen:
        seen = len(sub.got())
        time.sleep(quiet)
    return sub.got()


def test_discovery_is_published_again_when_home_assistant_comes_online(broker, tmp_path):
    """A listener on stdin, waiting for audio; Home Assistant says `online`: the configs again."""
    listener = Listener(
        tmp_path, "listen", "--stdin", "--rate", "16000", "--display", "none",
        "--mqtt", broker.url, "--name", "hall", stdin=subprocess.PIPE,
    )  # fmt: skip
    sub = Subscriber(broker.port)
    try:
        topic = "homeassistant/sensor/hall/sound/config"
        sub.wait(lambda: sub.payloads("edge-asc/hall/availability") == ["online"], 60, "online")
        sub.wait(lambda: len(sub.payloads(topic)) >= 1, 30, "discovery")
        before = len(sub.payloads(topic))
        sub.client.publish("homeassistant/status", "online", qos=1)
        sub.wait(lambda: len(sub.payloads(topic)) > before, 30, "discovery again")
        listener.proc.stdin.close()
        assert listener.wait(timeout=60) == 0, listener.stderr
    finally:
        listener.kill()
        sub.close()
    assert sub.payloads("edge-asc/hall/availability")[-1] == "offline"


def test_a_broker_restart_under_a_running_listener(broker, sequence, tmp_path):
    """Events while the broker is down are in SQLite; once it is back the listener reconnects
    by itself, says online again, republishes discovery and goes on publishing events."""
    pcm = sf.read(sequence, dtype="int16")[0].astype(np.int16).tobytes()
    db = tmp_path / "h.db"
    listener = Listener(
        tmp_path, "listen", "--stdin", "--rate", "16000", "--display", "none", "--db", str(db),
        "--mqtt", broker.url, "--name", "yard", "--notify-cooldown", "0", stdin=subprocess.PIPE,
    )  # fmt: skip
    sub = Subscriber(broker.port)
    try:
        stdin = listener.proc.stdin
        stdin.write(pcm)
        stdin.flush()
        sub.wait(lambda: len([e for e in events_of(sub, "yard") if e["type"] == "end"]) >= 4,
                 60, "the first four events")  # fmt: skip
        sub.close()
        broker.stop()
        listener.wait_stderr("lost the MQTT broker", 60)
        stored = len(read_events(db))
        stdin.write(pcm)  # five events while the broker is away
        stdin.flush()
        listener.wait_for(lambda: len(read_events(db)) >= stored + 5, 60, "events in SQLite")
        broker.start()
        sub = Subscriber(broker.port)
        listener.wait_stderr("is back", 60)
        sub.wait(lambda: "online" in sub.payloads("edge-asc/yard/availability"), 30, "online")
        sub.wait(lambda: sub.payloads("homeassistant/sensor/yard/sound/config"), 30, "discovery")
        stdin.write(pcm)
        stdin.flush()
        stdin.close()
        assert listener.wait(timeout=120) == 0, listener.stderr
        sub.wait(lambda: sub.payloads("edge-asc/yard/availability")[-1:] == ["offline"], 30)
    finally:
        listener.kill()
        sub.close()
    ends = [e["label"] for e in events_of(sub, "yard") if e["type"] == "end"]
    assert ends[-5:] == LABELS  # publishing resumed: the events after the restart
    labels = [e.label for e in read_events(db)]
    assert labels == LABELS * 3  # every event, the outage's included, in the history
    err = listener.stderr
    assert err.count("lost the MQTT broker") == 1 and err.count("is back") == 1
    assert "Traceback" not in err


def test_two_listeners_with_other_names_do_not_collide(broker, sequence, tmp_path):
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    args = ["listen", "--from-file", str(sequence), "--fast", "--display", "none"]
    procs = [
        subprocess.Popen(
            [*edge_asc_argv(), *args, "--mqtt", broker.url, "--name", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in ("kitchen", "porch")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for node in ("kitchen", "porch"):
        sub.wait(lambda n=node: sub.payloads(f"edge-asc/{n}/availability")[-1:] == ["offline"])
        assert [e["label"] for e in events_of(sub, node) if e["type"] == "end"] == LABELS
    configs = [json.loads(p) for t, p, _ in sub.got() if t.endswith("/config")]
    ids = {c["unique_id"] for c in configs}
    assert len(ids) == len({t for t, _, _ in sub.got() if t.endswith("/config")})
    assert {c["device"]["identifiers"][0] for c in configs} == {
        "edge_asc_kitchen",
        "edge_asc_porch",
    }
    sub.close()


def edge_asc_argv() -> list[str]:
    from listener import EDGE_ASC

    return EDGE_ASC


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("mqtt://broker.lan", ("broker.lan", 1883, None, None, False)),
        ("mqtts://u:p%40ss@10.0.0.2", ("10.0.0.2", 8883, "u", "p@ss", True)),
        ("mqtt://ha@host:1999", ("host", 1999, "ha", None, False)),
    ],
)
def test_broker_urls(url, want):
    address = parse_url(url)
    got = (address.host, address.port, address.username, address.password, address.tls)
    assert got == want


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mqtt", "http://host"], "--mqtt must be mqtt://"),
        (["--mqtt", "mqtt://host:99999"], "not a number from 1 to 65535"),
        (["--mqtt", "mqtt://host/topic"], "not a path"),
        (["--name", "x"], "apply to --mqtt only"),
        (["--mqtt", "mqtt://host", "--name", "!!!"], "--name must have a letter"),
        (["--mqtt", "mqtts://host", "--mqtt-ca", "/nonexistent.pem"], "no such file"),
        (["--mqtt", "mqtt://host", "--ha-prefix", "a/#"], "--ha-prefix must be"),
    ],
)
def test_bad_mqtt_options_are_one_line(args, message, shared_data):
    clip = shared_data / "urbansound8k-16k" / "fold3" / f"{SEQUENCE[0][0]}.flac"
    result = edge_asc("listen", "--from-file", str(clip), "--fast", *args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_parse_url_refuses_in_one_line():
    with pytest.raises(EdgeAscError):
        parse_url("broker.lan:1883")
