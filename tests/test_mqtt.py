"""MQTT against a real mosquitto broker (Debian's package) that these tests start and stop on a
loopback port: Home Assistant discovery, the state and event messages of real shared clips
replayed through `listen`, a broker restart under a running listener, two listeners side by
side."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
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
    """mosquitto on 127.0.0.1:port, no persistence (a restart forgets every retained message);
    `settings`: its other lines (TLS files, a password file)."""

    def __init__(self, folder: Path, settings: str = "allow_anonymous true\n") -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        # As root, mosquitto would become the user `mosquitto`, who cannot read tmp_path.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"listener {self.port} 127.0.0.1\n{settings}persistence false\n{user}")
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

    def __init__(self, port: int, setup: Callable[[paho.Client], object] | None = None) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        if setup is not None:  # TLS, a user name
            setup(self.client)
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


# --- TLS with client certificates, and a password file -----------------------------------------


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(folder: Path, name: str) -> Path:
    """A throwaway CA: `name`.pem and `name`.key in `folder`."""
    openssl(folder, "req", "-x509", *EC, "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-days", "2", "-subj", f"/CN=edge-asc test {name}")  # fmt: skip
    return folder / f"{name}.pem"


def make_cert(folder: Path, name: str, ca: str, usage: str, san: str = "") -> None:
    """`name`.pem and `name`.key signed by the CA `ca` (serverAuth or clientAuth)."""
    ext = folder / f"{name}.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage={usage}\nsubjectKeyIdentifier=hash\n"
        f"authorityKeyIdentifier=keyid,issuer\n{san}"
    )
    openssl(folder, "req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")  # fmt: skip
    openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
            f"{ca}.key", "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
            "-extfile", str(ext))  # fmt: skip


@pytest.fixture
def tls_broker(tmp_path) -> Iterator[tuple[Broker, Path]]:
    """mosquitto speaking only TLS, requiring a client certificate from the CA; (broker, the
    folder with ca.pem, client.pem, client.key and other-ca.pem, a CA that signed nothing)."""
    pki = tmp_path / "pki"
    pki.mkdir()
    make_ca(pki, "ca")
    make_cert(pki, "server", "ca", "serverAuth", "subjectAltName=IP:127.0.0.1\n")
    make_cert(pki, "client", "ca", "clientAuth")
    make_ca(pki, "other-ca")
    settings = (
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\nkeyfile {pki / 'server.key'}\n"
        "require_certificate true\nallow_anonymous true\n"
    )
    running = Broker(tmp_path, settings)
    running.start()
    try:
        yield running, pki
    finally:
        running.stop()


def tls_client(pki: Path) -> Callable[[paho.Client], object]:
    return lambda client: client.tls_set(
        str(pki / "ca.pem"), str(pki / "client.pem"), str(pki / "client.key")
    )


def test_mqtts_with_a_client_certificate_connects_and_publishes(tls_broker, sequence, tmp_path):
    broker, pki = tls_broker
    sub = Subscriber(broker.port, tls_client(pki))
    time.sleep(0.3)
    run = edge_asc(
        "listen", "--from-file", str(sequence), "--fast", "--display", "none",
        "--mqtt", f"mqtts://127.0.0.1:{broker.port}", "--name", "tls",
        "--mqtt-ca", str(pki / "ca.pem"), "--mqtt-cert", str(pki / "client.pem"),
        "--mqtt-key", str(pki / "client.key"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"connected to the MQTT broker 127.0.0.1:{broker.port}" in run.stderr
    sub.wait(lambda: sub.payloads("edge-asc/tls/availability")[-1:] == ["offline"])
    assert "online" in sub.payloads("edge-asc/tls/availability")
    assert [e["label"] for e in events_of(sub, "tls") if e["type"] == "end"] == LABELS
    assert sub.payloads("homeassistant/sensor/tls/sound/config")
    sub.close()


def refused_once(listener: Listener, text: str) -> str:
    """Wait for `text`, let paho retry a few times (1 s, then 2 s), end the listener cleanly;
    its stderr."""
    listener.wait_stderr(text, 60)
    time.sleep(3.5)
    listener.proc.stdin.close()
    assert listener.wait(timeout=60) == 0, listener.stderr
    return listener.stderr


def test_mqtts_with_a_wrong_ca_is_one_clear_line(tls_broker, tmp_path):
    broker, pki = tls_broker
    listener = Listener(
        tmp_path, "listen", "--stdin", "--rate", "16000", "--display", "none",
        "--mqtt", f"mqtts://127.0.0.1:{broker.port}", "--name", "wrong-ca",
        "--mqtt-ca", str(pki / "other-ca.pem"), "--mqtt-cert", str(pki / "client.pem"),
        "--mqtt-key", str(pki / "client.key"), stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        err = refused_once(listener, "cannot connect to the MQTT broker")
    finally:
        listener.kill()
    lines = [line for line in err.splitlines() if "MQTT" in line]
    assert len(lines) == 1, err  # said once, not at each retry
    assert f"cannot connect to the MQTT broker 127.0.0.1:{broker.port}: TLS:" in lines[0]
    assert "certificate" in lines[0]  # OpenSSL's reason, e.g. "self-signed certificate in chain"
    assert "(check --mqtt-ca); retrying every 1 s to 5 min" in lines[0]
    assert "Traceback" not in err


@pytest.fixture
def password_broker(tmp_path) -> Iterator[Broker]:
    """mosquitto with a password file (user `edge`, password `s3cret:x`), no anonymous
    clients."""
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "edge", "s3cret:x"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    running = Broker(tmp_path, f"allow_anonymous false\npassword_file {passwords}\n")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_user_and_password(password_broker, sequence, tmp_path):
    broker = password_broker
    sub = Subscriber(broker.port, lambda client: client.username_pw_set("edge", "s3cret:x"))
    time.sleep(0.3)
    args = ["listen", "--from-file", str(sequence), "--fast", "--display", "none"]
    url = f"mqtt://edge:s3cret%3Ax@127.0.0.1:{broker.port}"  # a ':' in it, percent-encoded
    run = edge_asc(*args, "--mqtt", url, "--name", "pw")
    assert run.returncode == 0, run.stderr
    assert "connected to the MQTT broker" in run.stderr
    sub.wait(lambda: sub.payloads("edge-asc/pw/availability")[-1:] == ["offline"])
    assert [e["label"] for e in events_of(sub, "pw") if e["type"] == "end"] == LABELS
    sub.close()


@pytest.mark.parametrize("user", ["edge:wrong", "stranger:s3cret%3Ax", ""])
def test_a_wrong_password_is_reported_once(password_broker, tmp_path, user):
    broker = password_broker
    listener = Listener(
        tmp_path, "listen", "--stdin", "--rate", "16000", "--display", "none",
        "--mqtt", f"mqtt://{user}{'@' if user else ''}127.0.0.1:{broker.port}", "--name", "pw",
        stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        err = refused_once(listener, "refused the connection")
    finally:
        listener.kill()
    lines = [line for line in err.splitlines() if "MQTT" in line]
    assert len(lines) == 1, err  # said once; not "lost the broker" at each retry either
    assert "the broker refused the connection: Not authorized" in lines[0]
    assert "Traceback" not in err


# --- the update message of an event in progress -------------------------------------------------


def test_an_event_in_progress_gets_update_messages(broker, shared_data, tmp_path):
    """A siren for about 13 s of real time (a 4-s clip fed every second on stdin): its start,
    an update at most every 10 s (UPDATE_INTERVAL_S) with the same id and the event as it
    stands then, and its end."""
    siren = next(clip for clip, label in SEQUENCE if label == "siren")
    audio, _ = sf.read(shared_data / "urbansound8k-16k" / "fold3" / f"{siren}.flac", dtype="int16")
    pcm = audio.astype(np.int16).tobytes()
    sub = Subscriber(broker.port)
    listener = Listener(
        tmp_path, "listen", "--stdin", "--rate", "16000", "--display", "none",
        "--mqtt", broker.url, "--name", "long", stdin=subprocess.PIPE,
    )  # fmt: skip
    arrived: dict[str, float] = {}
    try:
        sub.wait(lambda: "online" in sub.payloads("edge-asc/long/availability"), 60, "online")
        began = time.monotonic()
        while time.monotonic() - began < 13:
            listener.proc.stdin.write(pcm)
            listener.proc.stdin.flush()
            for e in events_of(sub, "long"):
                arrived.setdefault(e["type"], time.monotonic())
            time.sleep(1.0)
        listener.proc.stdin.write(np.zeros(16000 * 3, np.int16).tobytes())  # silence: it ends
        listener.proc.stdin.close()
        assert listener.wait(timeout=60) == 0, listener.stderr
        sub.wait(lambda: sub.payloads("edge-asc/long/availability")[-1:] == ["offline"])
    finally:
        listener.kill()
        sub.close()
    sent = events_of(sub, "long")
    assert [e["type"] for e in sent] == ["start", "update", "end"], sent
    start, update, end = sent
    assert start["label"] == update["label"] == end["label"] == "siren"
    assert start["id"] == update["id"] == end["id"]
    assert start["duration_s"] < update["duration_s"] < end["duration_s"]
    assert start["windows"] < update["windows"] < end["windows"]
    assert arrived["update"] - arrived["start"] >= 9  # not before the interval
    assert not [t for t, _, retained in sub.got() if t.endswith("/event") and retained]
