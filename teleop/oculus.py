"""Read the Quest controllers over ADB: find the headset, start its app, follow its logcat.

pure-python-adb (`ppadb`) talks to the local `adb` server (127.0.0.1:5037): `Client(host, port)`,
`client.devices(state=...)`, `client.remote_connect(ip, port)` for Wi-Fi, `device.is_installed(pkg)`,
`device.install(apk)` and `device.shell(cmd, handler=fn, timeout=s)`, where the handler gets the open
connection and reads the shell's output from it as it arrives. A background thread keeps the newest
reading; the control loop only ever takes it (never waits on the headset).

Losing the headset is normal (it sleeps when taken off, cables get pulled): with no valid frame for
`lost_after_s` the reader reports itself disconnected (teleop then holds the robot still); after
`reconnect_after_s` without frames, or at once when the stream closes, it reconnects and restarts the app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from remix.common.errors import HardwareError
from teleop.protocol import APP_LOG_TAG, ControllerReading, LogcatParser, ParserStats

DEFAULT_PACKAGE = "com.rail.oculus.teleop"
_MAX_LINE_BYTES = 1 << 16  # a protocol line is ~600 bytes; anything this long is a corrupt stream


@dataclass(frozen=True)
class AdbSettings:
    """Where the headset is and how patient to be with it."""

    adb_host: str = "127.0.0.1"
    adb_port: int = 5037
    serial: str | None = None  # pick one headset when several are plugged in
    ip_address: str | None = None  # headset over Wi-Fi (`adb tcpip 5555` once over USB first)
    device_port: int = 5555
    package: str = DEFAULT_PACKAGE
    activity: str = ".MainActivity"
    apk_path: str | None = None  # install the app from here when it is missing
    tag: str = APP_LOG_TAG
    lost_after_s: float = 0.5
    reconnect_after_s: float = 2.0
    read_timeout_s: float = 0.1
    connect_timeout_s: float = 5.0


@dataclass(frozen=True)
class HeadsetSample:
    """The newest controller reading with when and in what order it arrived."""

    reading: ControllerReading
    received_time: float  # time.time() on this machine
    received_monotonic: float  # time.monotonic(), for ages
    sequence: int


@dataclass(frozen=True)
class ReaderStats:
    lines: int
    samples: int
    malformed: int
    foreign: int
    last_error: str
    reconnects: int
    connection_error: str


def _default_client(host: str, port: int) -> Any:
    try:
        from ppadb.client import Client
    except ImportError as error:  # pragma: no cover - ppadb ships with the dev/oculus extras
        raise HardwareError(
            "pure-python-adb is not installed; install the Oculus extra: pip install 'remix-stack[oculus]'"
        ) from error
    return Client(host=host, port=port)


class OculusReader:
    """Latest Quest controller pose and buttons from the headset app, read on a background thread."""

    def __init__(
        self, settings: AdbSettings = AdbSettings(), client_factory: Callable[[str, int], Any] = _default_client
    ) -> None:
        self.settings = settings
        self._client_factory = client_factory
        self._parser = LogcatParser(settings.tag)
        self._lock = threading.Lock()
        self._latest: HeadsetSample | None = None
        self._pressed_since_take: set[str] = set()
        self._sequence = 0
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._device: Any = None
        self._reconnects = 0
        self._connection_error = ""

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect (errors here say what to fix), start the app, then follow logcat in the background."""
        self._device = self._connect()
        self._running.set()
        self._thread = threading.Thread(target=self._follow, name="oculus-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.read_timeout_s * 10 + 1)
            self._thread = None

    def __enter__(self) -> OculusReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ readings
    def latest(self) -> HeadsetSample | None:
        with self._lock:
            return self._latest

    def fresh(self, now: float | None = None) -> HeadsetSample | None:
        """The latest sample if it is younger than `lost_after_s`, else None (headset lost)."""
        sample = self.latest()
        now = time.monotonic() if now is None else now
        if sample is None or now - sample.received_monotonic > self.settings.lost_after_s:
            return None
        return sample

    def take(self, now: float | None = None) -> tuple[HeadsetSample | None, frozenset[str]]:
        """The fresh sample (or None) and every button pressed in any frame since the last `take`.

        The control loop may run slower than the headset (5 Hz WidowX vs ~60 Hz frames): a short
        button tap between two control steps must still count.
        """
        with self._lock:
            pressed = frozenset(self._pressed_since_take)
            self._pressed_since_take = set(self._latest.reading.pressed) if self._latest else set()
        sample = self.fresh(now)
        return sample, (pressed | sample.reading.pressed) if sample is not None else frozenset()

    @property
    def connected(self) -> bool:
        return self.fresh() is not None

    def wait_for_sample(self, timeout_s: float) -> HeadsetSample:
        """Block until a fresh reading arrives (start-up only, never in the control loop)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sample = self.fresh()
            if sample is not None:
                return sample
            time.sleep(0.01)
        stats = self.stats()
        raise HardwareError(
            f"no controller data from the headset app within {timeout_s:.0f} s "
            f"({stats.lines} logcat lines, {stats.malformed} malformed{'; ' + stats.connection_error if stats.connection_error else ''}); "
            "put the headset on so it wakes, check the app is in front, and wake the controllers"
        )

    def stats(self) -> ReaderStats:
        parser: ParserStats = self._parser.stats
        return ReaderStats(
            lines=parser.lines,
            samples=parser.samples,
            malformed=parser.malformed,
            foreign=parser.foreign,
            last_error=parser.last_error,
            reconnects=self._reconnects,
            connection_error=self._connection_error,
        )

    # ------------------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        s = self.settings
        client = self._client_factory(s.adb_host, s.adb_port)
        try:
            device = self._find_device(client)
            self._ensure_app(device)
            device.shell(f"am start -n {s.package}/{s.activity}")
        except RuntimeError as error:
            raise self._explain(error) from None
        return device

    def _explain(self, error: RuntimeError) -> HardwareError:
        s = self.settings
        text = " ".join(str(error).split())
        if "connecting to" in text or "Connection refused" in text:
            return HardwareError(
                f"cannot reach the adb server at {s.adb_host}:{s.adb_port} ({text}); "
                "start it with `adb start-server` (apt install android-tools-adb) and check `adb devices`"
            )
        if "unauthorized" in text or "permission" in text:
            return HardwareError(
                f"the headset refuses ADB access ({text}); put it on and accept 'Allow USB debugging', "
                "and if `adb devices` says 'no permissions' add a udev rule for USB vendor 2833"
            )
        return HardwareError(f"ADB error talking to the headset ({text}); check `adb devices` and the cable")

    def _find_device(self, client: Any) -> Any:
        s = self.settings
        if s.ip_address:
            address = f"{s.ip_address}:{s.device_port}"
            if not client.remote_connect(s.ip_address, s.device_port):
                raise HardwareError(
                    f"cannot connect to the headset at {address}; check it is on the same network "
                    "(`adb shell ip route` over USB shows its IP) and that `adb tcpip 5555` was run once over USB"
                )
            wanted = address
        else:
            wanted = s.serial
        ready = {device.serial: device for device in client.devices(state="device")}
        visible = [device.serial for device in client.devices()]
        if wanted is not None:
            if wanted in ready:
                return ready[wanted]
            if wanted in visible:
                raise self._not_usable(wanted)
            raise HardwareError(
                f"headset {wanted!r} is not connected (ADB sees {visible or 'no devices'}); "
                "plug it in and wake it, or fix teleop.serial"
            )
        if not ready:
            if visible:
                raise self._not_usable(visible[0])
            raise HardwareError(
                "no headset found over ADB; plug the Quest in over USB (or set teleop.ip_address for Wi-Fi), "
                "wake it, and check `adb devices` lists it"
            )
        if len(ready) > 1:
            raise HardwareError(f"several ADB devices are connected {sorted(ready)}; choose one with teleop.serial=...")
        return next(iter(ready.values()))

    @staticmethod
    def _not_usable(serial: str) -> HardwareError:
        return HardwareError(
            f"headset {serial} is visible to ADB but not usable (unauthorized, no permissions or offline); "
            "put it on and accept 'Allow USB debugging', and if `adb devices` says 'no permissions' "
            "add a udev rule for USB vendor 2833"
        )

    def _ensure_app(self, device: Any) -> None:
        s = self.settings
        if device.is_installed(s.package):
            return
        if not s.apk_path:
            raise HardwareError(
                f"the teleop app {s.package} is not installed on the headset; install the oculus_reader APK "
                "with `adb install teleop-debug.apk` or set teleop.apk_path=/path/to/teleop-debug.apk"
            )
        device.install(s.apk_path, test=True)
        if not device.is_installed(s.package):
            raise HardwareError(f"installing {s.apk_path} did not install {s.package}; is it the oculus_reader APK?")

    # ------------------------------------------------------------------------------ background
    def _follow(self) -> None:
        s = self.settings
        # Only new lines: clear the buffer, then follow. (`logcat -T 0` is read as -T 1 and replays the last old
        # line: a stale pose and buttons from before this connection.)
        command = f"logcat -c && logcat -v threadtime {s.tag}:V *:S"
        while self._running.is_set():
            try:
                if self._device is None:
                    self._device = self._connect()
                    self._reconnects += 1
                self._device.shell(command, handler=self._consume, timeout=s.connect_timeout_s)
            except (RuntimeError, OSError, HardwareError) as error:
                self._connection_error = " ".join(str(error).split())
            # The stream ended or went silent: connect afresh (restarting the app) after a pause.
            self._device = None
            self._sleep_while_running(s.read_timeout_s * 5)

    def _sleep_while_running(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._running.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _consume(self, connection: Any) -> None:
        """Split the shell stream into lines and parse them, until stopped, closed or silent too long."""
        s = self.settings
        pending = b""
        last_data = time.monotonic()
        connection.socket.settimeout(s.read_timeout_s)  # the handshake had connect_timeout_s; reads poll
        try:
            while self._running.is_set():
                try:
                    chunk = connection.read(4096)
                except TimeoutError:
                    chunk = None
                now = time.monotonic()
                if chunk == b"":
                    self._connection_error = "the headset's logcat stream closed"
                    return
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    if len(pending) > _MAX_LINE_BYTES:
                        self._parser.stats.malformed += 1
                        pending = b""
                    for raw in lines:
                        self._take_line(raw.decode("utf-8", errors="replace"), now)
                sample = self.latest()
                last_data = max(last_data, sample.received_monotonic if sample else last_data)
                if now - last_data > s.reconnect_after_s:
                    self._connection_error = f"no controller data for {s.reconnect_after_s:.1f} s"
                    return
        finally:
            connection.close()

    def _take_line(self, line: str, now: float) -> None:
        reading = self._parser.feed(line.rstrip("\r"))
        if reading is None:
            return
        with self._lock:
            self._sequence += 1
            self._latest = HeadsetSample(reading, time.time(), now, self._sequence)
            self._pressed_since_take.update(reading.pressed)
