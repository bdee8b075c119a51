"""Running a checkpoint: round trip, determinism, chunk execution, temporal ensembling, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from remix.common.errors import ConfigError, RemixError
from remix.policy import load_policy
from remix.policy.inference import DiffusionPolicy
from tests.policy.conftest import FakeObservation, make_observation, write_tiny_checkpoint


def _rollout(policy, steps: int = 6, seed: int = 0) -> np.ndarray:
    policy.reset(make_observation(seed=100 + seed, size=16))
    return np.stack([policy.act(make_observation(seed=seed + t, size=16)) for t in range(steps)])


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    path, net, normalization = write_tiny_checkpoint(tmp_path / "ckpt")
    original = DiffusionPolicy(net, normalization, seed=3)
    loaded = load_policy(path, seed=3)
    assert isinstance(loaded, DiffusionPolicy)
    np.testing.assert_array_equal(_rollout(original), _rollout(loaded))


def test_actions_are_seeded_finite_and_in_the_demonstrated_range(tmp_path):
    path, _, normalization = write_tiny_checkpoint(tmp_path / "ckpt")
    policy = load_policy(path, seed=1)
    first, again = _rollout(policy), _rollout(policy)
    np.testing.assert_array_equal(first, again)  # reset re-seeds
    other = _rollout(load_policy(path, seed=2))
    assert not np.allclose(first, other)
    stats = normalization.actions.stats["robot"]
    assert first.dtype == np.float32 and np.all(np.isfinite(first))
    assert np.all(first >= np.array(stats.low, np.float32) - 1e-6) and np.all(first <= np.array(stats.high, np.float32) + 1e-6)


def test_actions_come_out_in_the_target_domains_units(tmp_path):
    path, net, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    from tests.policy.conftest import tiny_normalization

    two = tiny_normalization(("metres", "wide"))
    metres = _rollout(DiffusionPolicy(net, two, seed=0))
    wide = _rollout(DiffusionPolicy(net, two, seed=0, domain="wide"))
    # the same normalized chunk, un-normalized with a domain whose std is twice as large
    assert np.std(wide[:, :6]) > 1.5 * np.std(metres[:, :6])
    with pytest.raises(RemixError, match="target domain 'nope'"):
        DiffusionPolicy(net, two, domain="nope")


def test_chunk_execution_replans_every_exec_horizon(tmp_path, monkeypatch):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    policy = load_policy(path, exec_horizon=2, binarize_gripper=False)
    calls = []
    chunk = np.arange(28, dtype=np.float32).reshape(4, 7) / 100
    monkeypatch.setattr(policy, "predict_chunk", lambda: calls.append(1) or chunk.copy())
    actions = _rollout(policy, steps=5)
    assert len(calls) == 3
    np.testing.assert_array_equal(actions[:2], chunk[:2])
    np.testing.assert_array_equal(actions[2:4], chunk[:2])


def test_temporal_ensembling_averages_overlapping_chunks(tmp_path, monkeypatch):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    policy = load_policy(path, execution="ensemble", ensemble_decay=0.5, binarize_gripper=False)
    chunks = iter([np.full((4, 7), v, dtype=np.float32) for v in (0.0, 0.1, 0.2, 0.3, 0.4)])
    monkeypatch.setattr(policy, "predict_chunk", lambda: next(chunks))
    actions = _rollout(policy, steps=5)
    assert actions[0, 0] == pytest.approx(0.0)
    w = np.exp(-0.5 * np.array([1.0, 0.0]))  # step 1: chunk 0 (age 1) and chunk 1 (age 0)
    assert actions[1, 0] == pytest.approx((w * [0.0, 0.1]).sum() / w.sum(), rel=1e-5)
    w = np.exp(-0.5 * np.array([3.0, 2.0, 1.0, 0.0]))  # step 4: chunk 0 has expired (horizon 4)
    assert actions[4, 0] == pytest.approx((w * [0.1, 0.2, 0.3, 0.4]).sum() / w.sum(), rel=1e-5)


def test_usage_errors_are_clear(tmp_path):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    policy = load_policy(path)
    with pytest.raises(RemixError, match="before reset"):
        policy.act(make_observation())
    with pytest.raises(RemixError, match="cameras \\['cam0'\\]"):
        policy.reset(make_observation(cameras=("wrist",)))
    policy.reset(make_observation())
    gray = FakeObservation(images={"cam0": np.zeros((8, 8), np.uint8)}, state=np.zeros(7, np.float32))
    with pytest.raises(RemixError, match="expected uint8 HxWx3"):
        policy.act(gray)
    with pytest.raises(ConfigError, match="exec_horizon"):
        load_policy(path, exec_horizon=9)
    with pytest.raises(ConfigError, match="execution"):
        load_policy(path, execution="teleport")
    with pytest.raises(ConfigError, match="inference_steps"):
        load_policy(path, inference_steps=50)
    with pytest.raises(ConfigError, match="unknown policy options \\['steps'\\]"):
        load_policy(path, steps=10)


def _corrupt(tmp_path, how: str):
    path, net, _ = write_tiny_checkpoint(tmp_path / how)
    config = json.loads((path / "config.json").read_text())
    if how == "json":
        (path / "config.json").write_text("{not json")
    elif how == "format":
        config["format"] = 99
        (path / "config.json").write_text(json.dumps(config))
    elif how == "model_key":
        config["model"]["hiden"] = 3
        (path / "config.json").write_text(json.dumps(config))
    elif how == "normalization":
        del config["normalization"]
        (path / "config.json").write_text(json.dumps(config))
    elif how == "weights_bytes":
        (path / "model.safetensors").write_bytes(b"\x00" * 64)
    elif how == "nan":
        weights = {k: v.clone() for k, v in net.state_dict().items()}
        next(iter(weights.values())).fill_(float("nan"))
        save_file(weights, str(path / "model.safetensors"))
    elif how == "shape":
        config["model"]["hidden_dim"] = 128
        (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("how,message", [
    ("json", "unreadable"), ("format", "format 99"), ("model_key", "unknown model config keys"),
    ("normalization", "misses"), ("weights_bytes", "weights .* unreadable"), ("nan", "NaN/inf"),
    ("shape", "do not fit its model config"),
])
def test_bad_checkpoints_give_one_line_errors(tmp_path, how, message):
    path = _corrupt(tmp_path, how)
    with pytest.raises(RemixError, match=message) as info:
        load_policy(path)
    assert "\n" not in str(info.value)


def test_gpu_inference_is_seeded_when_available(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    policy = load_policy(path, device="cuda", seed=4)
    first = _rollout(policy)
    np.testing.assert_array_equal(first, _rollout(policy))
    assert np.all(np.isfinite(first))


def test_cached_frame_embeddings_give_the_same_chunks_as_encoding_the_history(tmp_path):
    path, net, normalization = write_tiny_checkpoint(tmp_path / "ckpt", use_state=True)
    policy = DiffusionPolicy(net, normalization, execution="ensemble", seed=0)
    goal = make_observation(seed=50, size=16)
    policy.reset(goal)
    encoded = []
    original = policy.net.frame_features

    def counting(images, goal_images):
        encoded.append(images.shape[2])
        return original(images, goal_images)

    policy.net.frame_features = counting
    frames = [make_observation(seed=t, size=16) for t in range(4)]
    per_step = []
    for t, observation in enumerate(frames):
        encoded.clear()
        policy.act(observation)
        per_step.append(sum(encoded))
        # the same chunk from scratch: encode the whole history with the plain forward pass
        history = [frames[max(t - 1, 0)], observation]
        images = torch.stack([policy._camera_images(o, "obs") for o in history], dim=1)[None]
        state = torch.from_numpy(np.stack([normalization.normalize_state(o.state) for o in history]))[None]
        with torch.no_grad():
            full = net.encode(images, policy._goal[None], state)
            cached = net.condition(torch.stack([f.features for f in policy._history], dim=1)[None], state)
        torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-5)
    assert per_step == [1, 1, 1, 1]  # one new frame per step; the first one stands in for the missing history


def test_receding_horizon_executes_three_quarters_of_the_chunk_by_default(tmp_path, monkeypatch):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt", horizon=6)
    policy = load_policy(path)
    calls = []
    monkeypatch.setattr(policy, "predict_chunk", lambda: calls.append(1) or np.zeros((6, 7), np.float32))
    _rollout(policy, steps=8)
    assert policy.exec_horizon == 4 and len(calls) == 2  # replans at steps 0 and 4


def test_gripper_is_binarized_at_execution(tmp_path, monkeypatch):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    chunk = np.zeros((4, 7), np.float32)
    chunk[:, 0] = 0.013
    chunk[:, 6] = [0.3, 0.51, 0.49, 0.9]
    binarized = load_policy(path, exec_horizon=4)
    monkeypatch.setattr(binarized, "predict_chunk", lambda: chunk.copy())
    actions = _rollout(binarized, steps=4)
    np.testing.assert_array_equal(actions[:, 6], [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(actions[:, 0], 0.013)  # motion untouched
    raw = load_policy(path, exec_horizon=4, binarize_gripper=False)
    monkeypatch.setattr(raw, "predict_chunk", lambda: chunk.copy())
    np.testing.assert_allclose(_rollout(raw, steps=4)[:, 6], chunk[:, 6])


def test_a_camera_of_another_size_is_rejected_not_resized(tmp_path):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")  # trained on 16x16
    policy = load_policy(path)
    with pytest.raises(RemixError, match="is 24x24 but the policy was trained on 16x16; configure the camera as cam0: \\[16, 16\\]"):
        policy.reset(make_observation(size=24))
    policy.reset(make_observation(size=16))
    with pytest.raises(RemixError, match="32x32"):
        policy.act(make_observation(size=32))


def test_state_of_another_size_is_one_clear_error_and_ignored_without_proprio(tmp_path):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt", use_state=True)
    policy = load_policy(path)
    policy.reset(make_observation(size=16))
    short = FakeObservation(images=make_observation(size=16).images, state=np.zeros(5, np.float32))
    with pytest.raises(RemixError, match="5 values but the policy was trained on 7-d states"):
        policy.act(short)
    no_proprio = load_policy(write_tiny_checkpoint(tmp_path / "plain")[0])
    no_proprio.reset(make_observation(size=16))
    assert no_proprio.act(short).shape == (7,)


def test_robot_observations_need_no_timestamps():
    from robots.robot import Observation

    observation = Observation(images={"cam0": np.zeros((16, 16, 3), np.uint8)}, state=np.zeros(7, np.float32))
    assert observation.timestamps == {}
