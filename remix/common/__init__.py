"""Shared infrastructure used by every part (learning, robots, eval, teleop), with no torch import.

A robot host that only runs `remix-robot-server` needs these modules and nothing of the learning stack:
`errors` (user-facing one-line errors), `rpc` (ZeroMQ transport), `operator_input` (who answers
prompts), `cli` (hydra console scripts), `atomic` (crash-safe file writes), `rate` (fixed-rate loops).
"""
