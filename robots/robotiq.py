"""Robotiq 2F-85 through pyrobotiqgripper 3.x, driven from its own thread.

A Modbus RTU round trip takes ~16 ms and an activation several seconds, so the control loop never talks
to the gripper directly: `command(opening)` only records the newest request; the worker thread sends
it (`move(position, speed, force, wait=False)`, 0 = open, 255 = closed) and keeps `opening` fresh from
`position()`. A Modbus error is kept and re-raised to the loop by `check()` so it is reported, not lost.

pyrobotiqgripper 3.x behaviours handled here: `activate()` defaults to `reset=True`, a full open/close
stroke even when the gripper is already active (with an object in it, that drops the object), so connect
activates with `reset=False` (a stroke only when the gripper is not active yet). A blocking fault (gFLT
7, 10-15: not activated, automatic release, overcurrent, ...) is raised by every status read and only a
reset + re-activation clears it; the worker does that (`recover_faults`), resends the last request and
reports the fault once, so the trial is scored "robot fault" and the next one runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from remix.common.errors import HardwareError

log = logging.getLogger("robots.robotiq")

INSTALL_HINT = "install it with `pip install pyrobotiqgripper` (extra: remix-stack[franka])"
RECOVERABLE_FAULTS = frozenset({7, 10, 11, 12, 13, 14, 15})  # gFLT codes cleared by reset + activation


def _needs_reactivation(error: BaseException) -> bool:
    """A fault that a reset + activation clears (pyrobotiqgripper's own exception classes)."""
    try:
        from pyrobotiqgripper.exceptions import (
            GripperFaultError,
            GripperNotActivatedError,
            GripperNotStartedError,
        )
    except ImportError:
        return False
    if isinstance(error, GripperFaultError):
        return error.code in RECOVERABLE_FAULTS
    return isinstance(error, GripperNotActivatedError | GripperNotStartedError)


def default_gripper_factory(**kwargs: Any) -> Any:
    try:
        from pyrobotiqgripper import RobotiqGripper
    except ImportError:
        raise HardwareError(f"the Robotiq gripper needs pyrobotiqgripper; {INSTALL_HINT}") from None
    return RobotiqGripper(**kwargs)


class RobotiqWorker:
    """Owns a RobotiqGripper on a background thread; `opening` is 1 = open, 0 = closed."""

    def __init__(self, com_port: str = "/dev/ttyUSB0", device_id: int = 9, baudrate: int = 115200, speed: int = 255,
                 force: int = 150, poll_s: float = 0.02, activate: bool = True, recover_faults: bool = True,
                 factory: Callable[..., Any] = default_gripper_factory) -> None:
        self.settings = {"com_port": com_port, "device_id": int(device_id), "connection_type": "RTU", "baudrate": int(baudrate)}
        self.speed, self.force = int(speed), int(force)
        self.poll_s = float(poll_s)
        self.activate = activate
        self.recover_faults = recover_faults
        self.recoveries = 0
        self._factory = factory
        self._gripper: Any = None
        self._requested: float | None = None
        self._sent: int | None = None
        self._opening = 1.0
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.commands_sent = 0

    @staticmethod
    def to_position(opening: float) -> int:
        return int(round((1.0 - min(1.0, max(0.0, opening))) * 255))

    @property
    def opening(self) -> float:
        with self._lock:
            return self._opening

    def start(self) -> None:
        try:
            self._gripper = self._factory(**self.settings)
            if self.activate:  # no stroke when already active (reset=True would open and close fully)
                self._gripper.activate(reset=False)
        except HardwareError:
            raise
        except Exception as error:
            raise HardwareError(f"cannot reach the Robotiq gripper on {self.settings['com_port']} (device "
                                f"{self.settings['device_id']}): {error}; check the USB/RS485 adapter, its permissions "
                                "(dialout group) and com_port") from error
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="robotiq", daemon=True)
        self._thread.start()

    def command(self, opening: float) -> None:
        """Non-blocking: the newest request wins."""
        with self._lock:
            self._requested = float(opening)
        self._wake.set()

    def check(self) -> None:
        """Re-raise (once) an error the worker hit."""
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise HardwareError(f"Robotiq gripper error: {error}")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._gripper is not None:
            try:
                self._gripper.disconnect()
            except Exception as error:
                log.warning("robotiq disconnect failed: %s", error)
            self._gripper = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            try:
                with self._lock:
                    requested = self._requested
                if requested is not None:
                    position = self.to_position(requested)
                    if position != self._sent:
                        self._gripper.move(position, speed=self.speed, force=self.force, wait=False, readStatus=False)
                        self._sent = position
                        self.commands_sent += 1
                measured = self._gripper.position(refreshStatus=True)
                if measured is not None:
                    with self._lock:
                        self._opening = 1.0 - float(measured) / 255.0
            except Exception as error:  # keep running: the next tick retries, the loop hears about it
                if self.recover_faults and _needs_reactivation(error):
                    self._reactivate(error)  # before reporting: the loop's recovery then finds it cleared
                with self._lock:
                    self._error = error
                time.sleep(self.poll_s)

    def _reactivate(self, fault: BaseException) -> None:
        """Clear a blocking fault with reset + activation (a full stroke), then resend the last request."""
        log.warning("robotiq fault (%s): resetting and re-activating the gripper", fault)
        try:
            self._gripper.activate(reset=True)
        except Exception as error:
            log.error("robotiq re-activation failed: %s", error)
            return
        self._sent = None
        self.recoveries += 1
