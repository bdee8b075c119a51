"""Policies: the `load_policy` API, replay/scripted policies, and the goal-conditioned diffusion policy."""

from remix.policy.base import Policy, ReplayPolicy, ScriptedPolicy, load_policy

__all__ = ["Policy", "ReplayPolicy", "ScriptedPolicy", "load_policy"]
