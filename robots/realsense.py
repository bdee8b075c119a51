"""Intel RealSense color streams through pyrealsense2, one pipeline per camera serial.

For repeatable evaluation the exposure and white balance can be fixed (`exposure`, `white_balance`;
None keeps auto). Each frame carries the device capture time (converted from the device clock in ms
to time.time() through the smallest delivery delay seen) and the receive time; frames older than
`max_age_s` are refused as stale. pyrealsense2 is imported only when a camera starts.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from remix.common.errors import HardwareError
from robots.cameras import Camera, CameraTimeout, ImageTransform

INSTALL_HINT = ("install it with `pip install pyrealsense2` (extra: remix-stack[realsense]); it needs libusb-1.0 "
                "(`apt-get install libusb-1.0-0`) and udev rules for the camera")


def import_realsense() -> Any:
    try:
        import pyrealsense2 as rs
    except ImportError as error:
        raise HardwareError(f"RealSense cameras need pyrealsense2 ({error}); {INSTALL_HINT}") from None
    return rs


def list_serials(rs: Any = None) -> list[str]:
    """Serial numbers of the connected RealSense devices."""
    rs = rs or import_realsense()
    return [device.get_info(rs.camera_info.serial_number) for device in rs.context().devices]


class RealSenseCamera(Camera):
    """A RealSense color stream by serial; BGR from the device, RGB out, cropped and resized."""

    def __init__(self, name: str, serial: str, height: int, width: int, crop: tuple[int, int, int, int] | None = None,
                 capture_size: tuple[int, int] = (480, 640), fps: int = 30, exposure: float | None = None,
                 white_balance: float | None = None, max_age_s: float = 1.0, rs_module: Any = None) -> None:
        super().__init__(name, ImageTransform(height, width, crop), max_age_s)
        self.serial = str(serial)
        self.capture_size = (int(capture_size[0]), int(capture_size[1]))
        self.fps = int(fps)
        self.exposure = exposure
        self.white_balance = white_balance
        self._rs = rs_module
        self._pipeline: Any = None
        self._clock_offset_s: float | None = None
        self._last_frame_number: int | None = None

    def start(self) -> None:
        rs = self._rs = self._rs or import_realsense()
        serials = list_serials(rs)
        if self.serial not in serials:
            raise HardwareError(f"RealSense {self.serial!r} for camera {self.name!r} is not connected; connected: "
                                f"{serials or 'none'}; fix the serial or the USB3 cable")
        config = rs.config()
        config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, self.capture_size[1], self.capture_size[0], rs.format.bgr8, self.fps)
        pipeline = rs.pipeline()
        profile = pipeline.start(config)
        sensor = profile.get_device().first_color_sensor()
        if self.exposure is not None:
            sensor.set_option(rs.option.enable_auto_exposure, 0)
            sensor.set_option(rs.option.exposure, float(self.exposure))
        if self.white_balance is not None:
            sensor.set_option(rs.option.enable_auto_white_balance, 0)
            sensor.set_option(rs.option.white_balance, float(self.white_balance))
        self._pipeline = pipeline

    def stop(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None

    def _grab(self, timeout_s: float) -> tuple[np.ndarray, float]:
        if self._pipeline is None:
            raise HardwareError(f"camera {self.name!r} is not started; use the robot as a context manager")
        try:
            frames = self._pipeline.wait_for_frames(int(timeout_s * 1000))
        except RuntimeError as error:  # librealsense raises RuntimeError("Frame didn't arrive within ...")
            raise CameraTimeout(f"RealSense {self.serial} ({self.name!r}): {error}") from None
        received = time.time()
        color = frames.get_color_frame()
        if not color:
            raise CameraTimeout(f"RealSense {self.serial} ({self.name!r}) delivered no color frame")
        number = int(color.get_frame_number())
        if number == self._last_frame_number:
            raise CameraTimeout(f"RealSense {self.serial} ({self.name!r}) repeated frame {number}: the stream is stale")
        self._last_frame_number = number
        device_s = color.get_timestamp() / 1000.0
        # align the device clock to time.time() at the smallest delivery delay seen so far, so capture
        # times keep the device's spacing and are never later than their arrival
        offset = received - device_s
        if self._clock_offset_s is None or offset < self._clock_offset_s:
            self._clock_offset_s = offset
        captured = device_s + self._clock_offset_s
        bgr = np.asanyarray(color.get_data())
        return np.ascontiguousarray(bgr[:, :, ::-1]), captured
