"""Robots: one interface (`robots.robot`) for the mock, MuJoCo sim, WidowX, Franka and remote backends.

Modules: robot (contract, ArmRobot base, make_robot), safety (limits, watchdog, stop key), mock, sim +
sim_scene, widowx, franka + robotiq, cameras + realsense, remote + server (over remix.rpc), goals + cli
(remix-goal), rate (loop timing), geometry (pose math). SDKs are imported only when a backend connects.
"""
