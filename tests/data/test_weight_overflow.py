"""Wrong results with exit 0 (issue 14, finding 12): huge weights and control_hz=0."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.errors import ConfigError
from remix.data.mixture import normalize_weights


def test_huge_weights_do_not_overflow_to_zero() -> None:
    np.testing.assert_allclose(normalize_weights([1e308, 1e308, 0.0]), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(normalize_weights([1e308, 1e307]), [1 / 1.1, 0.1 / 1.1])


def test_sim_control_hz_zero_is_an_error_not_the_default() -> None:
    pytest.importorskip("mujoco")
    from robots.sim import SimRobot

    with pytest.raises(ConfigError, match="control_hz must be positive"):
        SimRobot(control_hz=0)
