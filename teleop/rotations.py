"""Axis-angle helpers the teleop mapping needs on top of robots.geometry (euler <-> matrix).

Gains and per-step limits act on a rotation's angle, so rotations are scaled and limited as
rotation vectors (axis * angle), which stay well defined where euler angles are not.
"""

from __future__ import annotations

import numpy as np


def from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad) -> (3, 3) rotation matrix (Rodrigues)."""
    vector = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(vector))
    if angle < 1e-12:
        return np.eye(3)
    k = vector / angle
    skew = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * skew + (1.0 - np.cos(angle)) * skew @ skew


def to_rotvec(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> rotation vector with angle in [0, pi]."""
    r = np.asarray(rotation, dtype=np.float64)
    cos_angle = float(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    angle = np.arccos(cos_angle)
    if angle < 1e-9:
        return np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2.0
    if np.pi - angle < 1e-6:  # near pi the antisymmetric part vanishes: read the axis off R + I
        symmetric = (r + np.eye(3)) / 2.0
        column = int(np.argmax(np.diag(symmetric)))
        axis = symmetric[:, column] / np.sqrt(max(symmetric[column, column], 1e-12))
        return axis / np.linalg.norm(axis) * angle
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2.0 * np.sin(angle))
    return axis * angle


def scale_rotation(rotation: np.ndarray, factor: float) -> np.ndarray:
    """The rotation about the same axis by `factor` times the angle."""
    return from_rotvec(to_rotvec(rotation) * factor)


def is_rotation(matrix: np.ndarray, tolerance: float = 1e-6) -> bool:
    m = np.asarray(matrix, dtype=np.float64)
    return m.shape == (3, 3) and bool(np.allclose(m @ m.T, np.eye(3), atol=tolerance)) and np.linalg.det(m) > 0
