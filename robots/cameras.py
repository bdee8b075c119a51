"""Cameras: one small interface for RealSense, OpenCV (USB), rendered (mock/sim) and file-backed frames.

Every camera returns RGB uint8 HxWx3 frames already cropped and resized to what the policy expects,
with a capture timestamp (device clock mapped to time.time()) and a receive timestamp. Frames older
than `max_age_s` are refused as stale (a frozen USB stream looks like a robot that never moves).
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from remix.common.errors import ConfigError, HardwareError


class CameraTimeout(HardwareError):
    """No fresh frame arrived in time (disconnected, stalled or stale stream)."""


@dataclass(frozen=True)
class ImageTransform:
    """Crop (top, left, height, width in source pixels; None = full frame) then resize to (height, width)."""

    height: int
    width: int
    crop: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"camera size must be positive, got {self.height}x{self.width}")
        if self.crop is not None and (len(self.crop) != 4 or min(self.crop) < 0 or self.crop[2] <= 0 or self.crop[3] <= 0):
            raise ConfigError(f"camera crop must be [top, left, height, width] with positive size, got {self.crop}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.crop is not None:
            top, left, h, w = self.crop
            if top + h > image.shape[0] or left + w > image.shape[1]:
                raise ConfigError(f"camera crop {list(self.crop)} exceeds the {image.shape[0]}x{image.shape[1]} frame; fix crop")
            image = image[top : top + h, left : left + w]
        if image.shape[:2] != (self.height, self.width):
            shrinking = image.shape[0] > self.height
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        return np.ascontiguousarray(image, dtype=np.uint8)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # uint8 HxWx3 RGB
    capture_time: float  # time.time() clock
    receive_time: float


class Camera(ABC):
    """A started camera yields fresh frames; `read` raises CameraTimeout when it cannot."""

    def __init__(self, name: str, transform: ImageTransform, max_age_s: float = 1.0) -> None:
        self.name = name
        self.transform = transform
        self.max_age_s = float(max_age_s)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.transform.height, self.transform.width)

    def start(self) -> None:  # noqa: B027 - optional hook
        """Open the device (no-op for rendered cameras)."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""

    @abstractmethod
    def _grab(self, timeout_s: float) -> tuple[np.ndarray, float]:
        """Return (RGB image of any size, capture time on the time.time() clock)."""

    def read(self, timeout_s: float = 1.0) -> Frame:
        image, captured = self._grab(timeout_s)
        received = time.time()
        if received - captured > self.max_age_s:
            raise CameraTimeout(
                f"camera {self.name!r} frame is stale ({received - captured:.2f} s old > {self.max_age_s} s); "
                "check the cable/stream or raise max_age_s"
            )
        return Frame(self.transform(image), captured, received)


class RenderCamera(Camera):
    """Frames drawn by a function (mock robot, MuJoCo), captured now."""

    def __init__(self, name: str, render: Callable[[int, int], np.ndarray], height: int, width: int) -> None:
        super().__init__(name, ImageTransform(height, width))
        self._render = render

    def _grab(self, timeout_s: float) -> tuple[np.ndarray, float]:
        return self._render(self.transform.height, self.transform.width), time.time()


class OpenCVCamera(Camera):
    """A USB/V4L2 camera through cv2.VideoCapture (index or device path).

    `VideoCapture.read()` has no timeout (V4L2 blocks up to OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT, 10 s by
    default), so each read runs on the camera's own thread and `read(timeout_s)` waits for it at most that
    long. A read still blocked is not duplicated: the next call waits for it (its frame is stamped when it
    arrives, so the age check still applies)."""

    def __init__(self, name: str, device: int | str, height: int, width: int, crop: tuple[int, int, int, int] | None = None,
                 capture_size: tuple[int, int] | None = None, fps: float | None = None, max_age_s: float = 1.0,
                 capture_factory: Callable[[int | str], Any] = cv2.VideoCapture) -> None:
        super().__init__(name, ImageTransform(height, width, crop), max_age_s)
        self.device = device
        self.capture_size = capture_size
        self.fps = fps
        self._capture_factory = capture_factory
        self._capture: Any = None
        self._reader: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def start(self) -> None:
        capture = self._capture_factory(self.device)
        if not capture.isOpened():
            raise HardwareError(f"cannot open USB camera {self.device!r} for {self.name!r}; check `ls /dev/video*` and permissions")
        if self.capture_size is not None:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.capture_size[0])
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.capture_size[1])
        if self.fps is not None:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queued old one
        self._capture = capture
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"camera-{self.name}")

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.shutdown(wait=False, cancel_futures=True)
            self._reader = None
        self._pending = None
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _read_once(self) -> tuple[bool, Any, float]:
        ok, bgr = self._capture.read()
        return ok, bgr, time.time()

    def _grab(self, timeout_s: float) -> tuple[np.ndarray, float]:
        if self._capture is None or self._reader is None:
            raise HardwareError(f"camera {self.name!r} is not started; use the robot as a context manager")
        if self._pending is None:
            self._pending = self._reader.submit(self._read_once)
        try:
            ok, bgr, captured = self._pending.result(timeout=timeout_s)
        except FutureTimeout:
            raise CameraTimeout(f"USB camera {self.name!r} ({self.device!r}) gave no frame within {timeout_s:g} s "
                                "(the read is blocked); check the cable and that no other program holds the camera") from None
        self._pending = None
        if not ok or bgr is None:
            raise CameraTimeout(f"USB camera {self.name!r} ({self.device!r}) returned no frame; check the cable")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), captured


class MockCamera(Camera):
    """A synthetic camera for dry runs of real-robot configs: a moving bar over a gradient, frame-numbered.

    `fail_next` makes the next reads time out, to rehearse camera-loss handling without hardware."""

    def __init__(self, name: str, height: int, width: int, crop: tuple[int, int, int, int] | None = None,
                 max_age_s: float = 1.0) -> None:
        super().__init__(name, ImageTransform(height, width, crop), max_age_s)
        self.frames = 0
        self.fail_next = 0

    def _grab(self, timeout_s: float) -> tuple[np.ndarray, float]:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise CameraTimeout(f"mock camera {self.name!r} timed out (injected)")
        height, width = self.transform.height, self.transform.width
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
        image[:, (self.frames * 3) % width, :] = 255
        self.frames += 1
        return image, time.time()


CAMERA_TARGETS = {"realsense": "robots.realsense.RealSenseCamera", "opencv": "robots.cameras.OpenCVCamera",
                  "mock": "robots.cameras.MockCamera"}


def camera_class(name: str, target: Any) -> type[Camera]:
    """The Camera subclass a config's `_target_` (module.Class) names; imported only now (SDKs stay lazy)."""
    module_name, _, class_name = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name) if module_name else None
    except ImportError as error:
        raise ConfigError(f"camera {name!r}: cannot import {target!r} ({error})") from None
    except AttributeError:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, Camera)):
        raise ConfigError(f"camera {name!r} has unknown _target_ {target!r}; use one of {sorted(CAMERA_TARGETS.values())}")
    return cls


_SHAPE_KEYS = ("height", "width", "size", "shape", "image_size", "resolution")


def camera_shapes(shapes: Mapping[str, Any] | None) -> dict[str, tuple[int, int]]:
    """`cameras: {name: [H, W]}`, the one spelling of camera shapes in every robot config (mock, sim,
    widowx, franka), so `robot.cameras.cam0=[32,32]` works whichever robot is chosen.

    A camera given the old way (a mapping with `height`/`width` and the device settings) is a one-line
    error naming the new form."""
    out: dict[str, tuple[int, int]] = {}
    for name, shape in (shapes or {}).items():
        if isinstance(shape, Mapping):
            old = dict(shape)
            h, w = old.get("height", "H"), old.get("width", "W")
            raise ConfigError(f"robot.cameras.{name} is now its shape: write cameras: {{{name}: [{h}, {w}]}} and put "
                              f"its device settings (_target_, serial, ...) under camera_devices.{name}")
        try:
            height, width = (int(v) for v in shape)
        except (TypeError, ValueError):
            raise ConfigError(f"robot.cameras.{name}={shape!r} is not a shape; write cameras: {{{name}: [H, W]}}") from None
        if height <= 0 or width <= 0:
            raise ConfigError(f"robot.cameras.{name}=[{height}, {width}] must be positive; write cameras: {{{name}: [H, W]}}")
        out[str(name)] = (height, width)
    return out


def make_cameras(shapes: Mapping[str, Any] | None, devices: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Camera]:
    """Build a real robot's cameras from `cameras: {name: [H, W]}` (the frame size the policy sees) and
    `camera_devices: {name: {_target_: robots.realsense.RealSenseCamera, serial, capture_size, ...}}`."""
    sized = camera_shapes(shapes)
    devices = dict(devices or {})  # a device no camera names is unused (`robot.cameras=null`: no cameras at all)
    cameras: dict[str, Camera] = {}
    for name, (height, width) in sized.items():
        if name not in devices:
            raise ConfigError(f"camera {name!r} has no camera_devices.{name} (its _target_, serial, ...); "
                              f"add it or drop cameras.{name}")
        spec = dict(devices[name])
        if "type" in spec:  # the old plug-in key: say what replaces it
            new = CAMERA_TARGETS.get(str(spec["type"]), "robots.realsense.RealSenseCamera")
            raise ConfigError(f"camera {name!r}: 'type: {spec['type']}' is now '_target_: {new}'")
        spelled = [k for k in _SHAPE_KEYS if k in spec]
        if spelled:
            raise ConfigError(f"camera_devices.{name}.{spelled[0]}: the frame shape is set in one place only, "
                              f"cameras: {{{name}: [H, W]}}; drop {spelled} from camera_devices.{name}")
        if "_target_" not in spec:
            raise ConfigError(f"camera {name!r} has no _target_; use one of {sorted(CAMERA_TARGETS.values())}")
        cls = camera_class(name, spec.pop("_target_"))
        crop = tuple(spec.pop("crop")) if spec.get("crop") is not None else spec.pop("crop", None)
        try:
            cameras[name] = cls(name, height=height, width=width, crop=crop, **spec)  # type: ignore[call-arg]
        except TypeError as error:
            raise ConfigError(f"camera {name!r} config is invalid ({error}); see configs/robot/*.yaml for the keys") from None
    return cameras
