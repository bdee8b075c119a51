"""The ADB headset reader, with the real pure-python-adb client talking to a fake ADB server."""

from __future__ import annotations

import time

import numpy as np
import pytest
from ppadb.client import Client

from remix.common.errors import HardwareError
from teleop.fake_headset import FakeAdbServer, FakeHeadset, HeadsetScript, Segment
from teleop.oculus import AdbSettings, OculusReader


def settings_for(server: FakeAdbServer, **overrides) -> AdbSettings:
    values = dict(adb_port=server.port, lost_after_s=0.3, reconnect_after_s=0.6, read_timeout_s=0.05)
    values.update(overrides)
    return AdbSettings(**values)


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_fake_server_speaks_the_protocol_the_real_client_expects() -> None:
    with FakeAdbServer([FakeHeadset(serial="QUEST1")]) as server:
        client = Client(host="127.0.0.1", port=server.port)
        assert client.version() == 0x29
        [device] = client.devices()
        assert device.serial == "QUEST1"
        assert device.is_installed("com.rail.oculus.teleop")
        assert not device.is_installed("com.example.other")
        assert "Starting" in device.shell("am start -n com.rail.oculus.teleop/.MainActivity")


def test_reader_streams_latest_pose_and_buttons_and_counts_garbage() -> None:
    script = HeadsetScript([[Segment(10.0, move=(0.1, 0.0, 0.0), grip=True, trigger=0.9, buttons=("A",))]])
    headset = FakeHeadset(script=script, rate_hz=100, noise_every=5)
    with FakeAdbServer([headset]) as server, OculusReader(settings_for(server)) as reader:
        assert headset.app_starts == 1
        first = reader.wait_for_sample(3.0)
        script.episode_started()
        wait_until(lambda: reader.stats().malformed >= 2)
        sample = reader.latest()
        assert sample.sequence > first.sequence
        assert sample.reading.is_pressed("RG") and sample.reading.is_pressed("A")
        assert sample.reading.value("rightTrig") == pytest.approx(0.9)
        assert abs(sample.received_time - time.time()) < 1.0
        x_before = sample.reading.poses["r"][0, 3]
        time.sleep(0.3)
        assert reader.latest().reading.poses["r"][0, 3] > x_before  # the controller is moving in +x
        stats = reader.stats()
        assert stats.samples >= 10 and stats.foreign >= 2  # other apps' lines skipped, not counted as errors


def test_take_reports_button_taps_shorter_than_a_control_period() -> None:
    script = HeadsetScript([[Segment(0.3), Segment(0.05, buttons=("B",)), Segment(5.0)]])
    headset = FakeHeadset(script=script, rate_hz=200)
    with FakeAdbServer([headset]) as server, OculusReader(settings_for(server)) as reader:
        reader.wait_for_sample(3.0)
        script.episode_started()
        sample, tapped = reader.take()
        assert "B" not in tapped
        time.sleep(0.6)  # the tap came and went while nobody looked
        sample, tapped = reader.take()
        assert "B" in tapped and not sample.reading.is_pressed("B")
        assert "B" not in reader.take()[1]  # reported once


def test_lost_headset_is_detected_and_stream_reconnects() -> None:
    headset = FakeHeadset(rate_hz=100)
    with FakeAdbServer([headset]) as server, OculusReader(settings_for(server)) as reader:
        reader.wait_for_sample(3.0)
        headset.pause(1.5)  # taken off: the app stops writing frames
        wait_until(lambda: not reader.connected, timeout=1.0)
        wait_until(lambda: reader.stats().reconnects >= 1, timeout=3.0)  # silent too long: reconnect
        wait_until(lambda: reader.connected, timeout=3.0)
        assert headset.app_starts >= 2  # the app was started again on reconnect
        before = reader.stats().reconnects
        headset.unplug()  # cable pulled: the stream closes
        wait_until(lambda: reader.stats().reconnects > before, timeout=3.0)
        wait_until(lambda: reader.connected, timeout=3.0)


def test_wifi_headset_connects_by_ip() -> None:
    headset = FakeHeadset(serial="wifi", rate_hz=100)
    with FakeAdbServer(network={"192.168.1.20:5555": headset}) as server:
        with OculusReader(settings_for(server, ip_address="192.168.1.20")) as reader:
            assert reader.wait_for_sample(3.0).reading.poses["r"].shape == (4, 4)
        with pytest.raises(HardwareError, match="cannot connect to the headset at 192.168.1.9:5555"):
            OculusReader(settings_for(server, ip_address="192.168.1.9")).start()


@pytest.mark.parametrize(
    "headsets, overrides, message",
    [
        ([], {}, "no headset found over ADB"),
        ([FakeHeadset(state="unauthorized")], {}, "accept 'Allow USB debugging'"),
        ([FakeHeadset(state="no permissions (user in plugdev group)")], {}, "udev rule for USB vendor 2833"),
        ([FakeHeadset(installed=False)], {}, "not installed on the headset"),
        ([FakeHeadset(serial="A"), FakeHeadset(serial="B")], {}, "choose one with teleop.serial"),
        ([FakeHeadset(serial="A")], {"serial": "B"}, "headset 'B' is not connected"),
    ],
)
def test_setup_problems_say_what_to_do(headsets, overrides, message) -> None:
    with FakeAdbServer(headsets) as server:
        with pytest.raises(HardwareError, match=message):
            OculusReader(settings_for(server, **overrides)).start()


def test_no_adb_server_says_how_to_start_it() -> None:
    with FakeAdbServer() as server:
        port = server.port
    with pytest.raises(HardwareError, match="adb start-server"):
        OculusReader(AdbSettings(adb_port=port)).start()


def test_selected_serial_among_several() -> None:
    headsets = [FakeHeadset(serial="A", rate_hz=50), FakeHeadset(serial="B", rate_hz=50)]
    with FakeAdbServer(headsets) as server, OculusReader(settings_for(server, serial="B")) as reader:
        reader.wait_for_sample(3.0)
        assert headsets[1].app_starts == 1 and headsets[0].app_starts == 0
        assert np.isfinite(reader.latest().reading.poses["r"]).all()


def test_no_stale_line_from_before_the_connection_is_replayed() -> None:
    """A line the app logged before we connected (another session's A press) must not become a sample."""
    from teleop.protocol import APP_LOG_TAG, ControllerReading, format_payload

    stale = ControllerReading(poses={"r": np.eye(4)}, pressed=frozenset({"A", "RG"}), sides=frozenset({"r"}))
    headset = FakeHeadset(rate_hz=50, backlog=[f"01-01 00:00:00.000  4321  4390 I {APP_LOG_TAG}: {format_payload(stale)}"])
    with FakeAdbServer([headset]) as server, OculusReader(settings_for(server)) as reader:
        first = reader.wait_for_sample(3.0)
        _, tapped = reader.take()
        assert not first.reading.is_pressed("A") and "A" not in tapped
