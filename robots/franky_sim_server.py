"""An in-process franky-sim server: libfranka's network protocol on loopback, simulated in MuJoCo.

`franky-sim` (PyPI) answers the real franky/libfranka client exactly as an arm's FCI would, so the Franka
driver, `remix-shakedown robot=franka` and the tracking benchmark run the real client code without an
arm: `with FrankySimServer() as (server, host): FrankaRobot(fci_host=host, realtime=False, ...)`. The simulator
models no robot errors; `inject_reflex()` ends the running motion with the protocol's "aborted by reflex"
reply (as an arm's reflex does), which libfranka turns into the ControlException a real reflex raises.

On a loaded machine the Python simulator steps slower than 1 kHz (about 365 steps per wall second on the
2-core CI machine); libfranka follows the simulator's clock, so timings are taken on `sim_time` and loops
are paced with `sleep_sim`, which makes the figures independent of the machine's load.
"""

from __future__ import annotations

import threading
from typing import Any

from remix.common.errors import HardwareError


class FrankySimServer:
    """Context manager yielding (itself, the simulated FR3's hostname 127.x.y.z); the sim steps at 1 kHz on a thread."""

    def __init__(self, realtime: bool | float = True) -> None:
        self.realtime = realtime
        self._sim: Any = None
        self._server: Any = None
        self._reflex = threading.Event()
        self.reflexes_sent = 0
        self._steps = 0
        self._stepped = threading.Condition()

    @property
    def sim_time(self) -> float:
        """Simulated seconds since start (one step = 1 ms)."""
        return self._steps / 1000.0

    def sleep_sim(self, seconds: float, timeout_s: float = 60.0) -> None:
        """Wait until `seconds` of simulated time have passed."""
        goal = self._steps + round(seconds * 1000)
        with self._stepped:
            if not self._stepped.wait_for(lambda: self._steps >= goal, timeout_s):
                raise HardwareError(f"franky-sim did not advance {seconds} s within {timeout_s} s of wall time")

    def _count(self, sim: Any) -> None:
        with self._stepped:
            self._steps += 1
            self._stepped.notify_all()

    def __enter__(self) -> tuple[FrankySimServer, str]:
        try:
            from franky_sim import SimulationServer
            from franky_sim.mujoco_simulator import MujocoSimulator
        except ImportError as error:
            raise HardwareError(f"franky-sim is not installed ({error}); pip install franky-sim "
                                "(in the dev extra)") from None
        self._sim = MujocoSimulator(enable_visualization=False)
        self._sim.__enter__()
        try:
            robot = self._sim.add_robot()
            self._server = SimulationServer(self._sim)
            self._server.__enter__()
            self._sim.register_pre_step_callback(self._maybe_reflex)
            self._sim.register_post_step_callback(self._count)
            self._server.run_async(self.realtime)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self, robot.hostname

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None
        if self._sim is not None:
            self._sim.__exit__(None, None, None)
            self._sim = None

    def inject_reflex(self, timeout_s: float = 2.0) -> bool:
        """Abort the next running motion as a reflex would; True once sent (False: no motion within timeout)."""
        before = self.reflexes_sent
        self._reflex.set()
        done = threading.Event()
        deadline = threading.Timer(timeout_s, done.set)
        deadline.start()
        while not done.wait(0.005):
            if self.reflexes_sent > before:
                deadline.cancel()
                return True
        self._reflex.clear()
        return self.reflexes_sent > before

    def _maybe_reflex(self, sim: Any) -> None:
        """Runs on the simulation thread between command processing and the state broadcast."""
        if not self._reflex.is_set():
            return
        from franky_sim.franka_robot_protocol import MoveStatus, RobotCommand
        from franky_sim.franka_server import BaseCommand

        for server in self._server.robot_servers:
            motion = server.current_motion_id
            if motion:
                BaseCommand.send_response(server._tcp_socket, RobotCommand.kMove, motion, MoveStatus.kReflexAborted)
                server.stop_motion(send_preemption_signal=False)
                server.reset_current_motion_id()
                self._reflex.clear()
                self.reflexes_sent += 1
