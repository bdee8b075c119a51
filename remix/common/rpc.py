"""Network transport for the robot server and the policy server: ZeroMQ REQ/REP + msgpack, authenticated.

Why this shape: a robot host (ROS container, RT kernel) and a GPU machine talk request/reply, one call
at a time, with numpy arrays (images, states, actions) packed as raw bytes. The server binds 127.0.0.1
unless told otherwise and refuses to bind beyond loopback without a token. The client times out
instead of hanging and rebuilds its socket after a lost reply (a REQ socket is otherwise stuck), and
re-raises the server's user errors as the same RemixError types.

Every frame is `header | body` (struct `_HEADER`): magic, the client's random id, a per-client counter,
the client's monotonic send time and the call's deadline, the server's session nonce, and an
HMAC-SHA256 (key: the token) over header and body. The server checks the HMAC *before* unpacking
anything, so an unauthenticated peer costs one hash and nothing else; message size is bounded
(`MAX_MESSAGE_BYTES`) at the socket. Replays fail: the counter must grow per client, and the nonce
changes with every server start (a client learns it with a `__hello__` call, which does nothing else).
Stale requests are dropped: the server learns each client's clock offset from its fastest message and
refuses a request older than its own deadline (a frozen server that resumes does not run a timed-out
action). Replies carry the request's id and counter and are signed too.

    server = RpcServer({"add": lambda a, b: a + b}, port=5555, token="s3cret"); server.start()
    client = RpcClient("tcp://127.0.0.1:5555", token="s3cret"); client.call("add", 1, 2)  # -> 3
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq

from remix.common import errors as remix_errors
from remix.common.errors import ConfigError, RemixError

log = logging.getLogger("remix.common.rpc")

_NDARRAY_EXT = 1
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # a few uncompressed camera frames; larger messages are refused
_REQUEST, _REPLY = b"RMX2", b"RMXR"
_HEADER = struct.Struct("!4s16sQqI16s")  # magic, client id, counter, sent (client monotonic ns), ttl ms, nonce
_MAC_BYTES = 32
_FRAME_OVERHEAD = _HEADER.size + _MAC_BYTES
_HELLO = "__hello__"
_MAX_CLIENTS = 1024


class RpcError(RemixError):
    """The call could not be made or failed on the server."""


class RpcTimeout(RpcError):
    """No reply within the timeout."""


class RpcServerGone(RpcTimeout):
    """No reply, and the server's liveness check failed as well (`RpcClient.call_while_alive`)."""


class RpcSessionError(RpcError):
    """The server restarted (new session nonce): the client says hello again and retries."""


@dataclass(frozen=True)
class RequestContext:
    """Who sent the call being handled, and when (the client's send time on the server's monotonic clock)."""

    client_id: bytes
    sent_ns: int


_context = threading.local()


def current_request() -> RequestContext | None:
    """The request a handler is serving (None outside a handler)."""
    return getattr(_context, "request", None)


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


def _key(token: object) -> bytes | None:
    """The HMAC key of a token (any value: numbers and non-ASCII text from a CLI work alike)."""
    if token is None or token == "":
        return None
    return str(token).encode("utf-8")


def _mac(key: bytes | None, data: bytes, body: bytes) -> bytes:
    if key is None:
        return bytes(_MAC_BYTES)
    digest = hmac.new(key, data, hashlib.sha256)
    digest.update(body)
    return digest.digest()


def _frame(magic: bytes, key: bytes | None, client_id: bytes, counter: int, sent_ns: int, ttl_ms: int,
           nonce: bytes, body: bytes) -> bytes:
    header = _HEADER.pack(magic, client_id, counter, sent_ns, ttl_ms, nonce)
    return header + _mac(key, header, body) + body


def _parse(frame: bytes, magic: bytes) -> tuple[tuple[Any, ...], bytes, bytes] | None:
    """(header fields, mac, body) of a frame, or None when it is not one."""
    if len(frame) < _FRAME_OVERHEAD or frame[:4] != magic:
        return None
    fields = _HEADER.unpack_from(frame)
    return fields, frame[_HEADER.size:_FRAME_OVERHEAD], frame[_FRAME_OVERHEAD:]


# --------------------------------------------------------------------------------------------- server
class RpcServer:
    """Serves named handlers, one call at a time, on a REP socket; `start()` runs it on a thread."""

    def __init__(self, handlers: Mapping[str, Callable[..., Any]], host: str = LOOPBACK, port: int = 0,
                 token: object = None, poll_ms: int = 50, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 run_when_late: tuple[str, ...] = ("stop", "release")) -> None:
        if not 0 <= int(port) <= 65535:
            raise ConfigError(f"rpc port {port} is out of range; use 0 (any free port) or 1-65535")
        self._key = _key(token)
        if host not in LOOPBACK_HOSTS and self._key is None:
            raise ConfigError(f"serving on {host} without a token would let anyone on the network call it; "
                              "set a token (token=... or the server's token environment variable) or bind 127.0.0.1")
        self.handlers = dict(handlers)
        self.run_when_late = tuple(run_when_late)  # methods that are always safe to run, however late (stop wins)
        self.token = str(token) if self._key is not None else None
        self.poll_ms = poll_ms
        self.max_message_bytes = int(max_message_bytes)
        self.calls = 0
        self.rejected = 0
        self.stale = 0
        self.nonce = os.urandom(16)
        self._clients: OrderedDict[bytes, tuple[int, int]] = OrderedDict()  # id -> (last counter, clock offset ns)
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes + _FRAME_OVERHEAD)
        try:
            if int(port) == 0:
                port = self._socket.bind_to_random_port(f"tcp://{host}")
            else:
                self._socket.bind(address_of(host, int(port)))
        except zmq.ZMQError as error:
            self._socket.close()
            raise RpcError(f"cannot bind rpc server to {host}:{port} ({error}); pick another port or stop the other server") from None
        self.host, self.port = host, int(port)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """Where a client on this machine connects."""
        host = LOOPBACK if self.host in ("0.0.0.0", "*") else self.host
        return address_of(host, self.port)

    @property
    def bind_address(self) -> str:
        """What the socket listens on (printed at startup: 0.0.0.0 means every interface)."""
        return address_of(self.host, self.port)

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
                request = self._socket.recv(zmq.NOBLOCK, copy=True)
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
        parsed = _parse(request, _REQUEST)
        if parsed is None:
            self.rejected += 1
            return pack({"ok": False, "error": {"type": "RpcError", "user": True, "attrs": {},
                                                "message": "not a remix rpc request; use remix.common.rpc.RpcClient"}})
        (_, client_id, counter, sent_ns, ttl_ms, nonce), mac, body = parsed

        def reply(payload: dict[str, Any]) -> bytes:
            return _frame(_REPLY, self._key, client_id, counter, 0, 0, self.nonce, pack(payload))

        try:
            result = self._checked_call(client_id, counter, sent_ns, ttl_ms, nonce, mac, request[:_HEADER.size], body)
            self.calls += 1
            return reply({"ok": True, "result": result})
        except Exception as error:
            if not isinstance(error, (RemixError, ValueError)):
                log.exception("rpc handler failed")
            try:
                return reply({"ok": False, "error": _error_payload(error)})
            except Exception:
                return reply({"ok": False, "error": {"type": "RpcError", "message": str(error), "attrs": {}, "user": True}})

    def _checked_call(self, client_id: bytes, counter: int, sent_ns: int, ttl_ms: int, nonce: bytes, mac: bytes,
                      header: bytes, body: bytes) -> Any:
        """Authenticate, then reject replays and stale requests, then unpack and run the handler."""
        if not hmac.compare_digest(mac, _mac(self._key, header, body)):
            self.rejected += 1
            raise RpcError("rpc token rejected; pass the server's token (token=...)")
        now = time.monotonic_ns()
        if counter == 0:  # hello: learn the nonce; nothing else happens
            self._note_client(client_id, 0, now - sent_ns)
            return {"nonce": self.nonce}
        if nonce != self.nonce:
            raise RpcSessionError("the rpc server restarted; say hello again")
        last, offset = self._clients.get(client_id, (None, None))
        if last is None or counter <= last:
            self.rejected += 1
            raise RpcError("replayed or out-of-order rpc request refused (its counter was already used)")
        offset = min(offset, now - sent_ns)
        self._note_client(client_id, counter, offset)
        sent_here = sent_ns + offset
        try:
            message = unpack(body)
        except Exception as error:
            raise RpcError(f"rpc request body is not valid msgpack ({type(error).__name__})") from None
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            raise RpcError("malformed rpc request; expected {method, args, kwargs}")
        age_ms = (now - sent_here) / 1e6
        if ttl_ms and age_ms > ttl_ms and message["method"] not in self.run_when_late:
            self.stale += 1
            raise RpcError(f"stale request dropped: it waited {age_ms / 1e3:.2f} s, past its {ttl_ms / 1e3:g} s deadline")
        args, kwargs = message.get("args") or (), message.get("kwargs") or {}
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise RpcError("malformed rpc request: args must be a list and kwargs a map with string keys")
        method = message["method"]
        if method == "__ping__":
            return {"methods": sorted(self.handlers)}
        handler = self.handlers.get(method)
        if handler is None:
            raise RpcError(f"unknown rpc method {method!r}; the server offers {sorted(self.handlers)}")
        _context.request = RequestContext(client_id, sent_here)
        try:
            return handler(*args, **kwargs)
        except TypeError as error:
            raise RpcError(f"bad arguments for {method!r}: {error}") from None
        finally:
            _context.request = None

    def _note_client(self, client_id: bytes, counter: int, offset: int) -> None:
        previous = self._clients.pop(client_id, None)
        if previous is not None and counter == 0:
            counter, offset = previous[0], min(previous[1], offset)
        self._clients[client_id] = (counter, offset)
        while len(self._clients) > _MAX_CLIENTS:
            self._clients.popitem(last=False)


# --------------------------------------------------------------------------------------------- client
class RpcClient:
    """Calls an RpcServer; thread-safe; raises RpcTimeout instead of hanging."""

    def __init__(self, address: str, token: object = None, timeout_s: float = 5.0,
                 error_types: Mapping[str, type[Exception]] | None = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, client_id: bytes | None = None) -> None:
        if not isinstance(address, str) or not address.startswith("tcp://"):
            raise ConfigError(f"rpc address {address!r} must look like tcp://HOST:PORT")
        self.address = address
        self._key = _key(token)
        self.token = str(token) if self._key is not None else None
        self.timeout_s = float(timeout_s)
        self.max_message_bytes = int(max_message_bytes)
        self.client_id = client_id or os.urandom(16)
        self.error_types: dict[str, type[Exception]] = {
            name: obj for name, obj in vars(remix_errors).items() if isinstance(obj, type) and issubclass(obj, Exception)
        }
        self.error_types.update({"RpcError": RpcError, "RpcTimeout": RpcTimeout, "ValueError": ValueError,
                                 "RpcSessionError": RpcSessionError})
        self.error_types.update(error_types or {})
        self._context = zmq.Context.instance()
        self._lock = threading.Lock()
        self._socket: zmq.Socket | None = None
        self._counter = 0
        self._nonce: bytes | None = None

    def _connect(self) -> zmq.Socket:
        if self._socket is None:
            socket = self._context.socket(zmq.REQ)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes + _FRAME_OVERHEAD)
            socket.connect(self.address)
            self._socket = socket
        return self._socket

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def call(self, method: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """Call `method(*args, **kwargs)` on the server; the server drops it once older than the timeout."""
        return self._call(method, args, kwargs, timeout_s, None, 0.0)

    def call_while_alive(self, method: str, *args: Any, timeout_s: float, alive: Callable[[], bool], check_s: float,
                         **kwargs: Any) -> Any:
        """`call`, but give up early when the server is dead rather than busy: every `check_s` without a reply,
        `alive()` is asked (e.g. a ping on another channel of the same server) and a False ends the wait.

        For read-only calls that may legitimately take long (a camera read with retries): a frozen server is
        noticed after `check_s` plus one `alive()`, a slow one still gets its whole `timeout_s`."""
        return self._call(method, args, kwargs, timeout_s, alive, float(check_s))

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], timeout_s: float | None,
              alive: Callable[[], bool] | None, check_s: float) -> Any:
        body = pack({"method": method, "args": list(args), "kwargs": kwargs})
        if len(body) > self.max_message_bytes:
            raise RpcError(f"{method!r} message is {len(body) / 2**20:.1f} MiB, over the {self.max_message_bytes / 2**20:g} "
                           "MiB rpc limit; send smaller images (or raise max_message_bytes on both ends)")
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        with self._lock:
            if self._nonce is None:
                self._nonce = self._exchange(_HELLO, b"", timeout)["nonce"]
            try:
                reply = self._exchange(method, body, timeout, alive, check_s)
            except RpcSessionError:  # the server restarted: learn its new nonce and send once more
                self._nonce = self._exchange(_HELLO, b"", timeout)["nonce"]
                reply = self._exchange(method, body, timeout, alive, check_s)
        return reply

    def _exchange(self, method: str, body: bytes, timeout: float, alive: Callable[[], bool] | None = None,
                  check_s: float = 0.0) -> Any:
        hello = method == _HELLO
        counter = 0 if hello else self._counter + 1
        if not hello:
            self._counter = counter
        ttl_ms = max(1, min(int(timeout * 1000), 2**32 - 1))
        frame = _frame(_REQUEST, self._key, self.client_id, counter, time.monotonic_ns(), ttl_ms,
                       bytes(16) if hello else (self._nonce or bytes(16)), body)
        socket = self._connect()
        socket.send(frame)
        start = time.monotonic()
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            wait = remaining if alive is None or check_s <= 0 else min(remaining, check_s)
            if remaining > 0 and socket.poll(max(1, int(wait * 1000)), zmq.POLLIN):
                break
            if time.monotonic() >= deadline:
                self._drop_socket()  # a REQ socket without its reply is stuck; start over next call
                raise RpcTimeout(f"no reply from {self.address} to {method!r} within {timeout:g} s; is the server "
                                 "running and reachable (host, port, firewall)?")
            if alive is not None and not alive():
                self._drop_socket()
                raise RpcServerGone(f"no reply from {self.address} to {method!r} after {time.monotonic() - start:.2f} s "
                                    "and the server no longer answers at all (frozen, crashed or unreachable)")
        return self._read_reply(socket.recv(), method, counter)

    def _read_reply(self, frame: bytes, method: str, counter: int) -> Any:
        parsed = _parse(frame, _REPLY)
        if parsed is None:
            raise RpcError(f"{self.address} sent a reply that is not a remix rpc frame; is it a remix server of the same version?")
        (_, client_id, reply_counter, _, _, _), mac, body = parsed
        if not hmac.compare_digest(mac, _mac(self._key, frame[:_HEADER.size], body)):
            raise RpcError(self._unsigned_reply_message(body))
        if client_id != self.client_id or reply_counter != counter:
            raise RpcError(f"{self.address} answered another request; the reply was dropped")
        reply = unpack(body)
        if reply.get("ok"):
            return reply.get("result")
        self._raise(reply.get("error") or {}, method)

    def _unsigned_reply_message(self, body: bytes) -> str:
        """Why a reply failed its signature: usually the server refused our token (its error is shown, never
        trusted as a result)."""
        try:
            message = str(unpack(body)["error"]["message"])[:200]
        except Exception:
            message = "the reply is not signed with our token"
        return f"{message} ({self.address}; check the token on both ends)"

    def _raise(self, error: Mapping[str, Any], method: str) -> None:
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
