"""Policies: the `load_policy` API, replay/scripted policies, and the goal-conditioned diffusion policy.

The diffusion modules (torchvision, diffusers and, through them, triton) are imported here on
purpose, not lazily: loading triton's native module *after* MuJoCo has created an EGL context
segfaults, and rollouts connect a sim robot before they load a checkpoint.
"""

from remix.policy.base import Policy, ReplayPolicy, ScriptedPolicy
from remix.policy.inference import DiffusionPolicy
from remix.policy.loading import load_policy

__all__ = ["DiffusionPolicy", "Policy", "ReplayPolicy", "ScriptedPolicy", "load_policy"]
