"""Robots: one interface (`robots.robot`) for the mock, MuJoCo sim, WidowX, Franka and remote backends.

Modules: robot (contract, ArmRobot base, make_robot), safety (limits, watchdog, stop key), mock, sim +
sim_scene, widowx, franka + robotiq, cameras + realsense, remote + server (over remix.common.rpc), goals + cli
(remix-goal), sim_interface (the SimulatedRobot protocol), geometry (pose math); the rate loop is
remix.common.rate. SDKs are imported only when a backend connects.
"""
