"""Network transport for the robot server and the policy server: ZeroMQ REQ/REP + msgpack.

Why this shape: a robot host (ROS container, RT kernel) and a GPU machine talk request/reply, one call
at a time, with numpy arrays (images, states, actions) packed as raw bytes. The server binds 127.0.0.1
unless told otherwise, checks an optional shared token on every call, answers malformed or
unauthorised requests with an error instead of dying, and keeps serving when a client vanishes
mid-call. The client times out instead of hanging and rebuilds its socket after a lost reply (a REQ
socket is otherwise stuck), and re-raises the server's user errors as the same RemixError types.

    server = RpcServer({"add": lambda a, b: a + b}, port=5555, token="s3cret"); server.start()
    client = RpcClient("tcp://127.0.0.1:5555", token="s3cret"); client.call("add", 1, 2)  # -> 3
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgpack
import numpy as np
import zmq

from remix.common import errors as remix_errors
from remix.common.errors import ConfigError, RemixError

log = logging.getLogger("remix.common.rpc")

_NDARRAY_EXT = 1
LOOPBACK = "127.0.0.1"
MAX_MESSAGE_BYTES = 512 * 1024 * 1024


class RpcError(RemixError):
    """The call could not be made or failed on the server."""


class RpcTimeout(RpcError):
    """No reply within the timeout."""


# ------------------------------------------------------------------------------------------- encoding
def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        array = obj if obj.flags.c_contiguous else obj.copy(order="C")  # keeps 0-d arrays 0-d
        if array.dtype.hasobject:
            raise TypeError("object arrays cannot be sent over rpc")
        header = msgpack.packb([array.dtype.str, list(array.shape)])
        return msgpack.ExtType(_NDARRAY_EXT, header + array.tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot send {type(obj).__name__} over rpc")


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _NDARRAY_EXT:
        return msgpack.ExtType(code, data)
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    dtype, shape = unpacker.unpack()
    offset = unpacker.tell()
    return np.frombuffer(data, dtype=np.dtype(dtype), offset=offset).reshape(shape).copy()


def pack(obj: Any) -> bytes:
    """msgpack with numpy arrays (any shape/dtype, zero-copy on the wire) and numpy scalars."""
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def _error_payload(error: BaseException) -> dict[str, Any]:
    attrs = {k: v for k, v in vars(error).items() if isinstance(v, (str, int, float, bool))} if hasattr(error, "__dict__") else {}
    return {"type": type(error).__name__, "message": str(error), "attrs": attrs,
            "user": isinstance(error, (RemixError, ValueError))}


def address_of(host: str, port: int) -> str:
    return f"tcp://{host}:{port}"


# --------------------------------------------------------------------------------------------- server
class RpcServer:
    """Serves named handlers, one call at a time, on a REP socket; `start()` runs it on a thread."""

    def __init__(self, handlers: Mapping[str, Callable[..., Any]], host: str = LOOPBACK, port: int = 0,
                 token: str | None = None, poll_ms: int = 50) -> None:
        if not 0 <= int(port) <= 65535:
            raise ConfigError(f"rpc port {port} is out of range; use 0 (any free port) or 1-65535")
        self.handlers = dict(handlers)
        self.token = token or None
        self.poll_ms = poll_ms
        self.calls = 0
        self.rejected = 0
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        try:
            if int(port) == 0:
                port = self._socket.bind_to_random_port(f"tcp://{host}")
            else:
                self._socket.bind(address_of(host, int(port)))
        except zmq.ZMQError as error:
            self._socket.close()
            raise RpcError(f"cannot bind rpc server to {host}:{port} ({error}); pick another port or stop the other server") from None
        self.host, self.port = host, int(port)
        if host not in (LOOPBACK, "localhost") and self.token is None:
            log.warning("rpc server on %s:%d has no token: anyone on this network can call it; set a token", host, self.port)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host = LOOPBACK if self.host in ("0.0.0.0", "*") else self.host
        return address_of(host, self.port)

    def start(self) -> RpcServer:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._thread = threading.Thread(target=self.serve_forever, name="rpc-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None
        if not self._socket.closed:
            self._socket.close(linger=0)

    def __enter__(self) -> RpcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve_forever(self) -> None:
        """Answer calls until `close()` (or KeyboardInterrupt when run in the foreground)."""
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        while not self._stop.is_set():
            try:
                if not poller.poll(self.poll_ms):
                    continue
            except zmq.ZMQError:
                if self._stop.is_set() or self._socket.closed:
                    break
                raise
            try:
                request = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                continue
            except zmq.ZMQError:
                if self._stop.is_set():
                    break
                raise
            reply = self.handle(request)
            try:
                self._socket.send(reply)  # a vanished client: zmq drops the reply, we keep serving
            except zmq.ZMQError as error:
                log.warning("rpc reply dropped: %s", error)

    def handle(self, request: bytes) -> bytes:
        """One request -> one reply; never raises (a bad request gets an error reply)."""
        try:
            try:
                message = unpack(request)
            except Exception as error:
                raise RpcError(f"rpc request is not valid msgpack ({type(error).__name__}); use remix.common.rpc.RpcClient") from None
            if not isinstance(message, dict) or not isinstance(message.get("method"), str):
                raise RpcError("malformed rpc request; expected {method, args, kwargs, token}")
            if self.token is not None and not hmac.compare_digest(str(message.get("token") or ""), self.token):
                self.rejected += 1
                raise RpcError("rpc token rejected; pass the server's token (token=...)")
            method = message["method"]
            if method == "__ping__":
                result: Any = {"methods": sorted(self.handlers)}
            else:
                handler = self.handlers.get(method)
                if handler is None:
                    raise RpcError(f"unknown rpc method {method!r}; the server offers {sorted(self.handlers)}")
                result = handler(*(message.get("args") or ()), **(message.get("kwargs") or {}))
            self.calls += 1
            return pack({"ok": True, "result": result})
        except Exception as error:
            if not isinstance(error, (RemixError, ValueError)):
                log.exception("rpc handler failed")
            try:
                return pack({"ok": False, "error": _error_payload(error)})
            except Exception:
                return pack({"ok": False, "error": {"type": "RpcError", "message": str(error), "attrs": {}, "user": True}})


# --------------------------------------------------------------------------------------------- client
class RpcClient:
    """Calls an RpcServer; thread-safe; raises RpcTimeout instead of hanging."""

    def __init__(self, address: str, token: str | None = None, timeout_s: float = 5.0,
                 error_types: Mapping[str, type[Exception]] | None = None) -> None:
        if not address.startswith("tcp://"):
            raise ConfigError(f"rpc address {address!r} must look like tcp://HOST:PORT")
        self.address = address
        self.token = token or None
        self.timeout_s = float(timeout_s)
        self.error_types: dict[str, type[Exception]] = {
            name: obj for name, obj in vars(remix_errors).items() if isinstance(obj, type) and issubclass(obj, Exception)
        }
        self.error_types.update({"RpcError": RpcError, "RpcTimeout": RpcTimeout, "ValueError": ValueError})
        self.error_types.update(error_types or {})
        self._context = zmq.Context.instance()
        self._lock = threading.Lock()
        self._socket: zmq.Socket | None = None

    def _connect(self) -> zmq.Socket:
        if self._socket is None:
            socket = self._context.socket(zmq.REQ)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
            socket.connect(self.address)
            self._socket = socket
        return self._socket

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def call(self, method: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """Call `method(*args, **kwargs)` on the server (`timeout_s` is reserved for the call itself)."""
        request = pack({"method": method, "args": list(args), "kwargs": kwargs, "token": self.token})
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        with self._lock:
            socket = self._connect()
            socket.send(request)
            if not socket.poll(int(timeout * 1000), zmq.POLLIN):
                self._drop_socket()  # a REQ socket without its reply is stuck; start over next call
                raise RpcTimeout(f"no reply from {self.address} to {method!r} within {timeout:g} s; is the server "
                                 "running and reachable (host, port, firewall)?")
            reply = unpack(socket.recv())
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        cls = self.error_types.get(error.get("type", ""))
        message = error.get("message", "remote error")
        if cls is None:
            raise RpcError(f"server error in {method!r}: {error.get('type')}: {message}")
        exc = cls(message)
        for key, value in (error.get("attrs") or {}).items():
            try:
                setattr(exc, key, value)
            except AttributeError:
                pass
        raise exc

    def ping(self, timeout_s: float | None = None) -> list[str]:
        """The server's method names; raises RpcTimeout when it is not there."""
        return list(self.call("__ping__", timeout_s=timeout_s)["methods"])

    def wait_ready(self, timeout_s: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.ping(timeout_s=min(1.0, max(0.05, deadline - time.monotonic())))
            except RpcTimeout:
                if time.monotonic() >= deadline:
                    raise

    def close(self) -> None:
        with self._lock:
            self._drop_socket()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
