"""Pose arithmetic for base-frame end-effector deltas.

Euler angles are extrinsic x-y-z (roll about world x, then pitch about world y, then yaw about world z),
i.e. R = Rz(yaw) @ Ry(pitch) @ Rx(roll), the BridgeData convention. Rotation deltas are applied about
the end-effector position in world axes: R_new = R_delta @ R_old. Kept in numpy because the policy side
must not need any robot SDK.
"""

from __future__ import annotations

import numpy as np


def euler_to_matrix(euler: np.ndarray) -> np.ndarray:
    """(3,) extrinsic xyz euler (rad) -> (3, 3) rotation matrix."""
    roll, pitch, yaw = (float(a) for a in euler)
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_euler(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> (3,) extrinsic xyz euler (rad), pitch in [-pi/2, pi/2]."""
    r = np.asarray(rotation, dtype=np.float64)
    sin_pitch = float(np.clip(-r[2, 0], -1.0, 1.0))
    pitch = np.arcsin(sin_pitch)
    if abs(sin_pitch) < 1.0 - 1e-9:
        roll = np.arctan2(r[2, 1], r[2, 2])
        yaw = np.arctan2(r[1, 0], r[0, 0])
    else:  # gimbal lock: yaw and roll share one axis; put it all in yaw
        roll = 0.0
        yaw = np.arctan2(-r[0, 1], r[1, 1])
    return np.array([roll, pitch, yaw])


def matrix_to_quat_xyzw(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> unit quaternion (x, y, z, w), the order franky and Eigen use."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = np.sqrt(trace + 1.0) * 2
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        q = [0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s]
    elif r[1, 1] > r[2, 2]:
        s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        q = [(r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        q = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s, (r[1, 0] - r[0, 1]) / s]
    quat = np.array(q)
    return quat / np.linalg.norm(quat)


def quat_xyzw_to_matrix(quat: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> (3, 3) rotation matrix."""
    x, y, z, w = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotation_delta_euler(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The world-axes euler delta d with R(after) = R(d) @ R(before)."""
    return matrix_to_euler(euler_to_matrix(after) @ euler_to_matrix(before).T)


def compose_rotation(euler: np.ndarray, delta_euler: np.ndarray) -> np.ndarray:
    """Apply a world-axes rotation delta to an orientation, both as extrinsic xyz euler."""
    return matrix_to_euler(euler_to_matrix(delta_euler) @ euler_to_matrix(euler))


def pose_matrix(position: np.ndarray, euler: np.ndarray) -> np.ndarray:
    """(4, 4) homogeneous transform from a position and extrinsic xyz euler."""
    transform = np.eye(4)
    transform[:3, :3] = euler_to_matrix(euler)
    transform[:3, 3] = position
    return transform
