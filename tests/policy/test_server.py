"""The policy server: a remote rollout gets the same actions as a local one."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.errors import RemixError
from remix.common.rpc import RpcError, RpcTimeout
from remix.policy import ReplayPolicy, load_policy
from remix.policy.client import RemotePolicy
from remix.policy.server import policy_server
from tests.policy.conftest import make_observation, write_tiny_checkpoint


def test_remote_checkpoint_policy_matches_local(tmp_path):
    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    local = load_policy(path, seed=5)
    served = load_policy(path, seed=5)
    with policy_server(served, str(path), token="s3cret") as server:
        remote = load_policy(server.address, token="s3cret")
        assert isinstance(remote, RemotePolicy)
        assert remote.info["cameras"] == ["cam0"] and remote.info["type"] == "DiffusionPolicy"
        for policy in (local, remote):
            policy.reset(make_observation(seed=9, size=16))
        for t in range(5):
            observation = make_observation(seed=t, size=16)
            np.testing.assert_array_equal(local.act(observation), remote.act(observation))
        remote.close()


def test_remote_replay_and_errors_travel_back(tmp_path):
    actions = np.tile(np.array([0.01, 0, 0, 0, 0, 0, 1], np.float32), (3, 1))
    with policy_server(ReplayPolicy(actions), "replay", token="abc") as server:
        with pytest.raises(RpcError, match="token rejected"):
            RemotePolicy(server.address, token="wrong")
        remote = RemotePolicy(server.address, token="abc")
        remote.reset(make_observation())
        np.testing.assert_array_equal(remote.act(make_observation()), actions[0])
        with pytest.raises(RemixError, match="malformed observation"):
            remote.client.call("act", {"state": [0.0] * 7})
        remote.close()


def test_a_dead_server_times_out_instead_of_hanging(tmp_path):
    with policy_server(ReplayPolicy(np.zeros((2, 7), np.float32)), "replay") as server:
        address = server.address
    with pytest.raises(RpcTimeout):
        RemotePolicy(address, timeout_s=0.3)


def test_policy_server_cli_without_a_policy_is_a_one_line_error(monkeypatch, capsys):
    import sys

    from remix.policy.server import main

    monkeypatch.setattr(sys, "argv", ["remix-policy-server"])
    with pytest.raises(SystemExit) as exit:
        main()
    assert exit.value.code == 1
    assert capsys.readouterr().err.strip() == ("error: remix-policy-server needs a policy: remix-policy-server "
                                               "CHECKPOINT_DIR (or replay:STORE#EP)")


def test_policy_server_cli_serves_until_terminated(tmp_path):
    import signal
    import socket
    import subprocess
    import sys

    from remix.data.synthetic import SyntheticDomain, make_synthetic_store

    make_synthetic_store(tmp_path / "demo.zarr", SyntheticDomain("demo", num_episodes=1, episode_length=4))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from remix.policy.server import main; main()"]
    # '#' is not allowed in an unquoted hydra value, so the spec is quoted for hydra
    server = subprocess.Popen([*command, f"'replay:{tmp_path / 'demo.zarr'}#0'", f"port={port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        remote = None
        for _ in range(100):
            try:
                remote = RemotePolicy(f"tcp://127.0.0.1:{port}", timeout_s=0.5)
                break
            except RpcTimeout:
                assert server.poll() is None, server.communicate()
        assert remote is not None
        remote.reset(make_observation())
        assert remote.act(make_observation()).shape == (7,)
        remote.close()
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0 and "serving replay:" in out


def test_one_owner_per_policy_episode():
    actions = np.tile(np.array([0.01, 0, 0, 0, 0, 0, 1], np.float32), (4, 1))
    with policy_server(ReplayPolicy(actions), "replay", token="abc") as server:
        first, second = RemotePolicy(server.address, token="abc"), RemotePolicy(server.address, token="abc")
        first.reset(make_observation())
        np.testing.assert_array_equal(first.act(make_observation()), actions[0])
        for call in (lambda: second.reset(make_observation()), lambda: second.act(make_observation())):
            with pytest.raises(RemixError, match="running another client's episode"):
                call()
        np.testing.assert_array_equal(first.act(make_observation()), actions[1])  # the first episode is intact
        first.close()  # releases the episode
        second.reset(make_observation())
        np.testing.assert_array_equal(second.act(make_observation()), actions[0])
        second.close()


def test_policy_token_from_the_environment_and_huge_images_refused(monkeypatch):
    monkeypatch.setenv("REMIX_POLICY_TOKEN", "from-env")
    with policy_server(ReplayPolicy(np.zeros((2, 7), np.float32)), "replay", token="from-env") as server:
        remote = RemotePolicy(server.address)
        with pytest.raises(RemixError, match="at most 4096 pixels"):
            remote.client.call("act", {"images": {"cam0": np.zeros((5000, 8, 3), np.uint8)}, "state": np.zeros(7, np.float32)})
        remote.close()
