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

from remix.common import rpc
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
    with RpcClient(server.address, token="secret", timeout_s=0.05) as gone, pytest.raises(RpcTimeout):
        gone.call("slow", 0.2)  # the client gives up (and drops its socket) before the reply
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


# ------------------------------------------------------------------ authentication, replay, size, deadlines
def _raw_send(address: str, frame: bytes) -> bytes:
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    try:
        socket.send(frame)
        assert socket.poll(3000), "the server must answer"
        return socket.recv()
    finally:
        socket.close()


class _Recorder(zmq.Socket):
    """A REQ socket that keeps a copy of every frame it sends (an eavesdropper's capture)."""

    sent: list[bytes] = []

    def send(self, data, *args, **kwargs):  # type: ignore[override]
        _Recorder.sent.append(bytes(data))
        return super().send(data, *args, **kwargs)


def test_nothing_is_unpacked_before_the_token_is_checked(server: RpcServer, monkeypatch) -> None:
    unpacked: list[int] = []
    real_unpack = rpc.unpack
    monkeypatch.setattr(rpc, "unpack", lambda data: unpacked.append(len(data)) or real_unpack(data))
    with RpcClient(server.address, token="wrong") as client, pytest.raises(RpcError, match="token rejected"):
        client.call("echo", np.zeros(1_000_000, np.uint8))
    server_side = [n for n in unpacked if n > 1000]  # the client unpacks only the small error reply
    assert server_side == [] and server.rejected == 1


def test_a_captured_request_does_not_replay(server: RpcServer, monkeypatch) -> None:
    _Recorder.sent = []
    monkeypatch.setattr(zmq.Context, "_socket_class", _Recorder)
    with RpcClient(server.address, token="secret") as client:
        assert client.call("echo", "move 5 cm") == "move 5 cm"
    monkeypatch.undo()
    captured = _Recorder.sent[-1]
    calls = server.calls
    reply = _raw_send(server.address, captured)  # the eavesdropper replays it byte for byte
    assert server.calls == calls and b"replayed" in reply


def test_a_replay_after_a_server_restart_is_refused(server: RpcServer, monkeypatch) -> None:
    _Recorder.sent = []
    monkeypatch.setattr(zmq.Context, "_socket_class", _Recorder)
    with RpcClient(server.address, token="secret") as client:
        client.call("echo", 1)
    monkeypatch.undo()
    with RpcServer({"echo": lambda x: x}, token="secret") as restarted:
        reply = _raw_send(restarted.address, _Recorder.sent[-1])
        assert restarted.calls == 0 and b"restarted" in reply
        with RpcClient(restarted.address, token="secret") as client:  # a real client says hello again
            assert client.call("echo", 2) == 2


def test_oversized_messages_are_refused_in_one_line(server: RpcServer) -> None:
    with RpcClient(server.address, token="secret") as client, pytest.raises(RpcError, match="over the 32 MiB rpc limit"):
        client.call("echo", np.zeros(rpc.MAX_MESSAGE_BYTES + 1, np.uint8))
    big = rpc._frame(rpc._REQUEST, b"secret", bytes(16), 1, 0, 1000, bytes(16), bytes(rpc.MAX_MESSAGE_BYTES + 10))
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(server.address)
    socket.send(big)
    assert not socket.poll(500), "the server drops an oversized message at the socket, unread"
    socket.close()
    with RpcClient(server.address, token="secret") as client:
        assert client.call("echo", 3) == 3


@pytest.mark.parametrize("token", [1234, "s\u00e9same-\u79d8\u5bc6"])
def test_numeric_and_non_ascii_tokens_work(token) -> None:
    with RpcServer({"echo": lambda x: x}, token=token) as srv, RpcClient(srv.address, token=token) as client:
        assert client.call("echo", "ok") == "ok"
    with RpcServer({"echo": lambda x: x}, token=token) as srv, RpcClient(srv.address, token="other") as client:
        with pytest.raises(RpcError, match="token rejected"):
            client.call("echo", "no")


def test_binding_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="without a token"):
        RpcServer({}, host="0.0.0.0")
    with RpcServer({}, host="0.0.0.0", token="t") as srv:
        assert srv.bind_address.startswith("tcp://0.0.0.0:") and srv.address.startswith("tcp://127.0.0.1:")


def test_a_request_that_waited_past_its_deadline_is_dropped(server: RpcServer) -> None:
    ran: list[str] = []
    server.handlers["mark"] = lambda: ran.append("mark")
    with RpcClient(server.address, token="secret", timeout_s=5.0) as busy, \
            RpcClient(server.address, token="secret", timeout_s=0.3) as late:
        late.ping()  # the server has seen this client's clock
        blocker = threading.Thread(target=busy.call, args=("slow", 0.8))
        blocker.start()
        time.sleep(0.1)  # the server is busy for 0.7 s more: `mark` waits in its queue past its 0.3 s deadline
        with pytest.raises(RpcTimeout):
            late.call("mark")
        blocker.join()
        time.sleep(0.2)
    assert ran == [] and server.stale == 1


def test_call_while_alive_waits_for_a_slow_server_and_gives_up_early_on_a_dead_one(server: RpcServer) -> None:
    with RpcClient(server.address, token="secret") as client:
        checks: list[float] = []
        began = time.monotonic()
        assert client.call_while_alive("slow", 0.5, timeout_s=3.0, alive=lambda: checks.append(1) or True,
                                       check_s=0.1) == "done"  # busy but alive: the whole budget is available
        assert len(checks) >= 2 and time.monotonic() - began < 1.5
        began = time.monotonic()
        with pytest.raises(RpcTimeout, match="no longer answers"):
            client.call_while_alive("slow", 2.0, timeout_s=3.0, alive=lambda: False, check_s=0.2)
        assert time.monotonic() - began < 0.6  # noticed after one check, not after the 3 s budget
        time.sleep(2.0)  # let the server finish the abandoned call
        assert client.call("echo", 7) == 7  # the client rebuilt its socket
