"""A scripted Quest headset behind a fake ADB server, for CI and unattended runs.

`FakeAdbServer` speaks the ADB host protocol on a local TCP port (length-prefixed requests, OKAY/FAIL
replies, `host:devices`, `host:transport:<serial>`, `host:connect:<ip>:<port>`, `shell:<cmd>`), so the
real pure-python-adb client and the real `OculusReader` run unchanged against it. Each `FakeHeadset`
answers `pm path`, `am start` and `logcat` like the headset app: once started, logcat streams one
protocol line per frame, interleaved with other apps' lines and the occasional truncated line.

A `HeadsetScript` plays what an operator's hand does: per episode a list of segments (hold the grip,
move and turn the controller, squeeze the trigger, press A/B/...). It restarts when the collection
session announces an episode start, like an operator who waits for the robot to finish its reset.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from teleop.protocol import APP_LOG_TAG, ControllerReading, format_payload
from teleop.rotations import from_rotvec

DEFAULT_PACKAGE = "com.rail.oculus.teleop"
# The controller rests in front of the operator's chest (headset frame: x right, y up, z toward the user).
REST_POSE = np.array([[1.0, 0, 0, 0.15], [0, 1.0, 0, -0.30], [0, 0, 1.0, -0.35], [0, 0, 0, 1.0]])


@dataclass(frozen=True)
class Segment:
    """One stretch of an operator's hand motion, linear in time over `duration` seconds."""

    duration: float
    move: tuple[float, float, float] = (0.0, 0.0, 0.0)  # controller translation, headset frame (m)
    rotate: tuple[float, float, float] = (0.0, 0.0, 0.0)  # controller rotation vector, headset frame (rad)
    grip: bool = False  # dead-man (grip button) held
    trigger: float = 0.0  # index trigger, 0..1
    buttons: tuple[str, ...] = ()  # other buttons held during the segment (A, B, RJ, ...)

    @classmethod
    def from_mapping(cls, spec: Mapping) -> Segment:
        unknown = set(spec) - {"duration", "move", "rotate", "grip", "trigger", "buttons"}
        if unknown:
            raise ValueError(f"unknown headset script keys {sorted(unknown)}")
        return cls(
            duration=float(spec["duration"]),
            move=tuple(float(v) for v in spec.get("move", (0, 0, 0))),  # type: ignore[arg-type]
            rotate=tuple(float(v) for v in spec.get("rotate", (0, 0, 0))),  # type: ignore[arg-type]
            grip=bool(spec.get("grip", False)),
            trigger=float(spec.get("trigger", 0.0)),
            buttons=tuple(str(b) for b in spec.get("buttons", ())),
        )


class HeadsetScript:
    """Controller readings over time, one segment list per episode (cycled when they run out)."""

    def __init__(self, episodes: Sequence[Sequence[Segment]], rest_pose: np.ndarray = REST_POSE) -> None:
        if not episodes or not all(episodes):
            raise ValueError("a headset script needs at least one episode with at least one segment")
        self.episodes = [list(segments) for segments in episodes]
        self.rest_pose = np.asarray(rest_pose, dtype=np.float64)
        self._lock = threading.Lock()
        self._episode = -1
        self._started_at: float | None = None

    def episode_started(self) -> None:
        """Called when the robot is reset and recording starts: the operator begins the next episode."""
        with self._lock:
            self._episode += 1
            self._started_at = time.monotonic()

    def _segments(self) -> list[Segment]:
        return self.episodes[self._episode % len(self.episodes)]

    def reading(self, now: float | None = None) -> ControllerReading:
        now = time.monotonic() if now is None else now
        with self._lock:
            active = self._started_at is not None
            elapsed = now - self._started_at if active else 0.0
            segments = self._segments() if active else []
        position = self.rest_pose[:3, 3].copy()
        rotation = self.rest_pose[:3, :3].copy()
        current: Segment | None = None
        for segment in segments:
            fraction = 1.0 if segment.duration <= 0 else min(1.0, max(0.0, elapsed / segment.duration))
            position += fraction * np.asarray(segment.move)
            rotation = from_rotvec(fraction * np.asarray(segment.rotate)) @ rotation
            if elapsed < segment.duration:
                current = segment
                break
            elapsed -= segment.duration
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = position
        pressed = set(current.buttons) if current else set()
        grip = current.grip if current else False
        trigger = current.trigger if current else 0.0
        if grip:
            pressed.add("RG")
        if trigger > 0.5:
            pressed.add("RTr")
        return ControllerReading(
            poses={"r": pose},
            pressed=frozenset(pressed),
            analog={"rightJS": (0.0, 0.0), "rightTrig": (trigger,), "rightGrip": (1.0 if grip else 0.0,)},
            sides=frozenset({"r"}),
        )


@dataclass
class FakeHeadset:
    """The device side: its ADB state, the installed app, and the logcat stream the app produces."""

    serial: str = "1WMHH000000000"
    state: str = "device"  # or "unauthorized", "no permissions (...)", "offline"
    installed: bool = True
    script: HeadsetScript | Callable[[], ControllerReading] | None = None
    rate_hz: float = 60.0
    noise_every: int = 25  # every n-th frame, also write another app's line and a truncated app line
    package: str = DEFAULT_PACKAGE
    app_running: bool = False
    frames_sent: int = 0
    app_starts: int = 0
    _paused_until: float = 0.0
    # the device's log buffer (app lines from before this connection); `logcat -c` clears it, and
    # `logcat -T n` replays its last max(n, 1) lines (logcat treats -T 0 as -T 1), as Android does
    backlog: list[str] = field(default_factory=list)
    _streams: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current_reading(self) -> ControllerReading:
        if self.script is None:
            return HeadsetScript([[Segment(1.0)]]).reading()
        if isinstance(self.script, HeadsetScript):
            return self.script.reading()
        return self.script()

    def pause(self, seconds: float) -> None:
        """Stop writing frames for a while (the headset was taken off and went to sleep)."""
        self._paused_until = time.monotonic() + seconds

    def unplug(self) -> None:
        """Cut every open logcat stream, like pulling the USB cable."""
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            try:
                stream.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def shell(self, command: str, connection: socket.socket, stop: threading.Event) -> None:
        words = command.split()
        if words[:2] == ["pm", "path"]:
            if self.installed and len(words) > 2 and words[2] == self.package:
                connection.sendall(f"package:/data/app/{self.package}-1/base.apk\n".encode())
        elif words[:2] == ["am", "start"]:
            if self.installed and any(self.package in word for word in words):
                self.app_running = True
                self.app_starts += 1
                connection.sendall(f"Starting: Intent {{ cmp={self.package}/.MainActivity }}\n".encode())
            else:
                connection.sendall(b"Error: Activity class does not exist.\n")
        elif words[:1] == ["logcat"]:
            if "-c" in words:
                self.backlog.clear()
            if "-T" in words:
                count = max(1, int(words[words.index("-T") + 1]))
                connection.sendall("".join(line + "\n" for line in self.backlog[-count:]).encode())
            self._stream_logcat(connection, stop)
        else:
            connection.sendall(f"/system/bin/sh: {words[0] if words else ''}: inaccessible or not found\n".encode())

    def _stream_logcat(self, connection: socket.socket, stop: threading.Event) -> None:
        with self._lock:
            self._streams.append(connection)
        connection.sendall(b"--------- beginning of main\n")
        period = 1.0 / self.rate_hz
        next_frame = time.monotonic()
        frame = 0
        while not stop.is_set():
            next_frame += period
            delay = next_frame - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not self.app_running or time.monotonic() < self._paused_until:
                continue
            stamp = time.strftime("%m-%d %H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
            payload = format_payload(self.current_reading())
            lines = [f"{stamp}  4321  4390 I {APP_LOG_TAG}: {payload}\n"]
            self.backlog = [*self.backlog[-99:], lines[0].rstrip("\n")]
            frame += 1
            if self.noise_every and frame % self.noise_every == 0:
                lines.insert(0, f"{stamp}  1000  1010 D SensorService: proximity 0.0\n")
                lines.insert(0, f"{stamp}  4321  4390 I {APP_LOG_TAG}: {payload[: len(payload) // 3]}\n")
            try:
                connection.sendall("".join(lines).encode())
            except OSError:
                return
            self.frames_sent += 1


def _recv_exact(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client closed")
        data += chunk
    return data


def _okay(payload: str | None = None) -> bytes:
    if payload is None:
        return b"OKAY"
    data = payload.encode()
    return b"OKAY" + f"{len(data):04x}".encode() + data


def _fail(message: str) -> bytes:
    data = message.encode()
    return b"FAIL" + f"{len(data):04x}".encode() + data


class FakeAdbServer:
    """An ADB server on 127.0.0.1 with scripted headsets attached (USB, or over Wi-Fi after connect)."""

    def __init__(self, headsets: Sequence[FakeHeadset] = (), network: Mapping[str, FakeHeadset] | None = None) -> None:
        self.headsets = {headset.serial: headset for headset in headsets}
        self.network = dict(network or {})  # "ip:port" -> headset reachable with `adb connect`
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.host, self.port = self._listener.getsockname()
        self._thread = threading.Thread(target=self._accept_loop, name="fake-adb-server", daemon=True)
        self.requests: list[str] = []

    def __enter__(self) -> FakeAdbServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        for headset in list(self.headsets.values()):
            headset.unplug()
        self._thread.join(timeout=2)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(None)
        headset: FakeHeadset | None = None
        try:
            while True:
                length = int(_recv_exact(connection, 4), 16)
                request = _recv_exact(connection, length).decode()
                self.requests.append(request)
                if request.startswith("host:transport:"):
                    serial = request.removeprefix("host:transport:")
                    candidate = self.headsets.get(serial)
                    if candidate is None:
                        connection.sendall(_fail(f"device '{serial}' not found"))
                        return
                    if candidate.state.startswith("unauthorized"):
                        connection.sendall(_fail("device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set"))
                        return
                    if candidate.state.startswith("no permissions"):
                        connection.sendall(_fail(f"insufficient permissions for device: {candidate.state}"))
                        return
                    if candidate.state != "device":
                        connection.sendall(_fail(f"device {candidate.state}"))
                        return
                    headset = candidate
                    connection.sendall(_okay())
                    continue
                if request.startswith("shell:"):
                    if headset is None:
                        connection.sendall(_fail("no device selected (host:transport first)"))
                        return
                    connection.sendall(_okay())
                    headset.shell(request.removeprefix("shell:"), connection, self._stop)
                    return
                connection.sendall(self._host_request(request))
                return
        except (ConnectionError, OSError, ValueError):
            return
        finally:
            try:
                connection.close()
            except OSError:
                pass

    def _host_request(self, request: str) -> bytes:
        if request == "host:version":
            return _okay("0029")
        if request == "host:devices":
            return _okay("".join(f"{serial}\t{h.state}\n" for serial, h in self.headsets.items()))
        if request.startswith("host:connect:"):
            address = request.removeprefix("host:connect:")
            headset = self.network.get(address)
            if headset is None:
                return _okay(f"failed to connect to '{address}': Connection refused")
            already = address in self.headsets
            self.headsets[address] = headset
            headset.serial = address
            return _okay(f"{'already connected' if already else 'connected'} to {address}")
        return _fail(f"unknown host service {request!r}")
