"""remix.common.rpc: numpy round trips, token, bad requests, timeouts, and clients vanishing mid-call."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from remix.common.errors import ConfigError, HardwareError
from remix.common.rpc import RpcClient, RpcError, RpcServer, RpcTimeout, pack, unpack
from robots.robot import RobotFault

dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_])


@settings(max_examples=60, deadline=None)
@given(dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5))))
def test_arrays_round_trip_exactly(array: np.ndarray) -> None:
    out = unpack(pack({"a": array, "nested": [array, {"x": array}]}))
    for got in (out["a"], out["nested"][0], out["nested"][1]["x"]):
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)
        assert got.flags.writeable


def test_numpy_scalars_and_non_contiguous_views() -> None:
    view = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    out = unpack(pack([np.float32(1.5), np.int64(3), view]))
    assert out[:2] == [1.5, 3]
    np.testing.assert_array_equal(out[2], view)


def test_object_arrays_are_refused() -> None:
    with pytest.raises(TypeError):
        pack(np.array([object()]))


@pytest.fixture
def server():
    calls: list[str] = []
    release = threading.Event()

    def slow(seconds: float) -> str:
        calls.append("slow")
        time.sleep(seconds)
        return "done"

    def fault() -> None:
        raise RobotFault("reflex recovered", kind="arm")

    def boom() -> None:
        raise KeyError("internal bug")

    handlers = {"echo": lambda x: x, "slow": slow, "fault": fault, "boom": boom,
                "hw": lambda: (_ for _ in ()).throw(HardwareError("arm unreachable"))}
    with RpcServer(handlers, token="secret") as srv:
        srv.calls_log = calls  # type: ignore[attr-defined]
        yield srv
    release.set()


def test_binds_loopback_by_default(server: RpcServer) -> None:
    assert server.host == "127.0.0.1" and server.address.startswith("tcp://127.0.0.1:")


def test_call_and_ping(server: RpcServer) -> None:
    with RpcClient(server.address, token="secret") as client:
        image = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
        np.testing.assert_array_equal(client.call("echo", {"img": image})["img"], image)
        assert "echo" in client.ping()


def test_wrong_or_missing_token_is_rejected(server: RpcServer) -> None:
    for token in (None, "guess"):
        with RpcClient(server.address, token=token) as client, pytest.raises(RpcError, match="token rejected"):
            client.call("echo", 1)
    assert server.rejected == 2


def test_remote_errors_keep_their_type_and_attributes(server: RpcServer) -> None:
    with RpcClient(server.address, token="secret", error_types={"RobotFault": RobotFault}) as client:
        with pytest.raises(RobotFault, match="reflex recovered") as info:
            client.call("fault")
        assert info.value.kind == "arm"
        with pytest.raises(HardwareError, match="arm unreachable"):
            client.call("hw")
        with pytest.raises(RpcError, match="KeyError"):
            client.call("boom")
        with pytest.raises(RpcError, match="unknown rpc method 'nope'"):
            client.call("nope")
        assert client.call("echo", 7) == 7, "server still serves after errors"


def test_garbage_request_gets_an_error_reply(server: RpcServer) -> None:
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(server.address)
    for garbage in (b"\xc1\xc1 not msgpack", pack([1, 2, 3])):
        socket.send(garbage)
        assert socket.poll(2000)
        reply = unpack(socket.recv())
        assert reply["ok"] is False and reply["error"]["message"]
    socket.close()
    with RpcClient(server.address, token="secret") as client:
        assert client.call("echo", "alive") == "alive"


def test_timeout_then_the_client_recovers(server: RpcServer) -> None:
    with RpcClient(server.address, token="secret", timeout_s=0.1) as client:
        with pytest.raises(RpcTimeout, match="no reply"):
            client.call("slow", 0.4)
        time.sleep(0.5)
        assert client.call("echo", 5) == 5


def test_server_survives_a_client_that_disconnects_mid_call(server: RpcServer) -> None:
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(server.address)
    socket.send(pack({"method": "slow", "args": [0.2], "kwargs": {}, "token": "secret"}))
    time.sleep(0.05)
    socket.close()  # gone before the reply
    with RpcClient(server.address, token="secret", timeout_s=3.0) as client:
        assert client.call("echo", "next") == "next"
    assert server.calls_log == ["slow"]  # type: ignore[attr-defined]


def test_no_server_times_out_with_a_clear_message() -> None:
    with RpcClient("tcp://127.0.0.1:1", timeout_s=0.1) as client, pytest.raises(RpcTimeout, match="is the server running"):
        client.call("echo", 1)


def test_bad_addresses_and_ports(server: RpcServer) -> None:
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        RpcClient("localhost:5555")
    with pytest.raises(RpcError, match="cannot bind"):
        RpcServer({}, port=server.port)
