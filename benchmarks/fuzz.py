"""Try the project as a hostile or careless user would, and count what happens.

    OMP_NUM_THREADS=1 python benchmarks/fuzz.py [--threads 1] [--timeout 25] [--only stores,settings,servers,flood]

Three classes of bad input:
- stores: a real synthetic store (with images) corrupted in many ways (deleted / truncated / flipped chunks,
  garbage or lying zarr.json, inconsistent attributes), each given to `remix-data validate` and `remix-data info`;
- settings: bad values for every console script (wrong types, out of range, huge sizes, outputs pointing at a
  file or an unwritable place, unknown names), run through the real entry points;
- servers: hostile messages to the robot server and the policy server (garbage, forged or replayed frames,
  oversized messages, malformed calls, stale requests, a second client hijacking a policy episode);
- flood: 8 parallel 400 MB messages to a token-protected `remix-robot-server` process; its RSS is reported.

Each case is classified: `clean` (one-line `error:` and a non-zero exit, or an error reply while the server
keeps serving), `traceback`, `hang` (no answer within the timeout, or a server that stops answering) or
`accepted` (exit 0 / an ok reply for a bad input: silently accepted). A few benign cases (a store with an
uncommitted tail) must be accepted and are counted apart. Each CLI case runs in a fork of this process
(imports are paid once), in its own folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUTCOMES = ("clean", "traceback", "hang", "accepted")


@dataclass
class Result:
    klass: str
    name: str
    outcome: str
    detail: str


# ----------------------------------------------------------------------------------------- CLI runner
def _scripts() -> dict[str, Callable[[], object]]:
    return {e.name: e.load() for e in entry_points(group="console_scripts") if e.name.startswith("remix-")}


def run_cli(main: Callable[[], object], argv: list[str], cwd: Path, timeout: float) -> tuple[str, str]:
    """(outcome, last output lines) of one console-script run in a forked child."""
    log_path = cwd / "output.txt"
    pid = os.fork()
    if pid == 0:
        code = 98
        try:
            os.chdir(cwd)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.setsid()
            sys.argv = argv
            try:
                main()
                code = 0
            except SystemExit as error:
                code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 99
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return "hang", _tail(log_path)
    code = os.waitstatus_to_exitcode(status)
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if "Traceback (most recent call last)" in text:
        return "traceback", _tail(log_path)
    if code == 0:
        return "accepted", _tail(log_path)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines and any(line.startswith("error:") for line in lines):
        return "clean", lines[-1][:200]
    return "traceback", f"exit {code} without an error: line: {_tail(log_path)}"


def _tail(path: Path, lines: int = 3) -> str:
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:])[:300]


# ----------------------------------------------------------------------------------------- bad stores
def _pristine(root: Path) -> Path:
    from remix.data.synthetic import SyntheticDomain, make_synthetic_store

    path = root / "pristine.zarr"
    make_synthetic_store(path, SyntheticDomain("a", num_episodes=4, episode_length=6, image_size=8)).close()
    return path


def _json_edit(path: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _attrs(**changes: object) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        def edit(meta: dict) -> None:
            for key, value in changes.items():
                if value is _DELETE:
                    meta["attributes"].pop(key, None)
                else:
                    meta["attributes"][key] = value

        _json_edit(store / "zarr.json", edit)

    return apply


_DELETE = object()


def _flip(relative: str) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        chunk = store / relative
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0x5A
        chunk.write_bytes(bytes(data))

    return apply


def _truncate(relative: str, keep: int = 7) -> Callable[[Path], None]:
    return lambda store: (store / relative).write_bytes((store / relative).read_bytes()[:keep])


def _delete(relative: str) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        target = store / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return apply


def _shape(relative: str, rows: int) -> Callable[[Path], None]:
    return lambda store: _json_edit(store / relative / "zarr.json", lambda m: m["shape"].__setitem__(0, rows))


def _replace_array(name: str, data: np.ndarray) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        import zarr

        group = zarr.open_group(store, mode="r+")
        del group[name]
        group.create_array(name, data=data)

    return apply


def _uncommitted_tail(store: Path) -> None:
    """What a writer killed between growing episode_ends and writing the value leaves: [..., 0]."""
    import zarr

    ends = zarr.open_group(store, mode="r+")["meta/episode_ends"]
    ends.resize((ends.shape[0] + 1,))


def store_cases() -> dict[str, Callable[[Path], None]]:
    image = "data/images/cam0/c/5/0/0/0"
    return {
        "deleted action chunk": _delete("data/action/c/0/0"),
        "deleted state chunk": _delete("data/state/c/0/0"),
        "deleted image chunk": _delete(image),
        "deleted field chunk": _delete("meta/task/c/0"),
        "deleted episode_ends chunk": _delete("meta/episode_ends/c/0"),
        "flipped byte in action chunk": _flip("data/action/c/0/0"),
        "flipped byte in image chunk": _flip(image),
        "flipped byte in episode_ends": _flip("meta/episode_ends/c/0"),
        "truncated action chunk": _truncate("data/action/c/0/0"),
        "truncated image chunk": _truncate(image),
        "empty image chunk": _truncate(image, 0),
        "garbage root zarr.json": lambda s: (s / "zarr.json").write_text("{{{"),
        "garbage action zarr.json": lambda s: (s / "data/action/zarr.json").write_text("not json"),
        "garbage ends zarr.json": lambda s: (s / "meta/episode_ends/zarr.json").write_text("[]"),
        "deleted root zarr.json": _delete("zarr.json"),
        "deleted meta group": _delete("meta"),
        "deleted data/action": _delete("data/action"),
        "string version": _attrs(version="1"),
        "future version": _attrs(version=99),
        "missing fps": _attrs(fps=_DELETE),
        "zero fps": _attrs(fps=0),
        "string fps": _attrs(fps="fast"),
        "wrong camera size": _attrs(cameras={"cam0": [64, 64]}),
        "undeclared camera": _attrs(cameras={}),
        "bad cameras attribute": _attrs(cameras="cam0"),
        "gripper dim out of range": _attrs(gripper_dims=[7]),
        "gripper dims not ints": _attrs(gripper_dims=["6"]),
        "too few action names": _attrs(action_names=["dx"]),
        "missing format": _attrs(format=_DELETE),
        "10^15 action rows": _shape("data/action", 10**15),
        "10^15 episodes": _shape("meta/episode_ends", 10**15),
        "10^15 image rows": _shape("data/images/cam0", 10**15),
        "fractional episode ends": _replace_array("meta/episode_ends", np.array([6.5, 12, 18, 24])),
        "decreasing episode ends": _replace_array("meta/episode_ends", np.array([6, 12, 9, 24])),
        "ends past the data": _replace_array("meta/episode_ends", np.array([6, 12, 18, 30])),
        "1-d actions": _replace_array("data/action", np.zeros(24, np.float32)),
        "3-d actions": _replace_array("data/action", np.zeros((24, 7, 2), np.float32)),
        "float64 actions": _replace_array("data/action", np.zeros((24, 7), np.float64)),
        "NaN in actions": _replace_array("data/action", np.full((24, 7), np.nan, np.float32)),
        "int images": _replace_array("data/images/cam0", np.zeros((24, 8, 8, 3), np.int32)),
        "short field": _replace_array("meta/task", np.array(["a"], dtype=object).astype(str)),
        "store is a file": lambda s: (shutil.rmtree(s), s.write_text("x")),
        "empty folder": lambda s: (shutil.rmtree(s), s.mkdir()),
    }


BENIGN_STORES: dict[str, Callable[[Path], None]] = {
    "uncommitted trailing episode end (killed writer)": _uncommitted_tail,
    "uncommitted rows past the last episode": lambda s: __import__("zarr").open_group(s, mode="r+")["data/action"].resize((30, 7)),
    "stale lock of a dead writer": lambda s: (s / ".remix-writer.lock").write_text("pid 999999 on nowhere since then\n"),
}


def _read_every_episode() -> None:
    """What training and the samplers do with a store: open it and read every step of every key."""
    from remix.common.errors import RemixError
    from remix.data.store import EpisodeStore

    try:
        store = EpisodeStore.open(sys.argv[2])
        for index in range(store.num_episodes):
            store.read_episode(index)
    except RemixError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def fuzz_stores(root: Path, scripts: dict, timeout: float) -> tuple[list[Result], list[Result]]:
    pristine = _pristine(root)
    results, benign = [], []
    for klass, cases, target in (("stores", store_cases(), results), ("benign stores", BENIGN_STORES, benign)):
        for name, corrupt in cases.items():
            case = root / f"case-{len(results) + len(benign)}"
            case.mkdir()
            store = case / "s.zarr"
            shutil.copytree(pristine, store)
            corrupt(store)
            commands = ["validate", "read"] if "image chunk" in name else ["validate", "info", "read"]
            for command in commands:  # `info` reads no frames: frame damage is for validate and the readers
                main = _read_every_episode if command == "read" else scripts["remix-data"]
                outcome, detail = run_cli(main, ["remix-data", command, str(store)], case, timeout)
                if klass == "benign stores":
                    outcome = "accepted" if outcome == "accepted" else f"refused ({outcome})"
                target.append(Result(klass, f"{command}: {name}", outcome, detail))
    return results, benign


# ----------------------------------------------------------------------------------------- bad settings
def settings_cases(root: Path) -> list[tuple]:
    a_file = root / "a_file"
    a_file.write_text("not a folder")
    from remix.data.synthetic import SyntheticDomain, make_synthetic_store

    store, other = root / "good.zarr", root / "other.zarr"
    for path, name in ((store, "a"), (other, "b")):
        make_synthetic_store(path, SyntheticDomain(name, num_episodes=4, episode_length=6)).close()
    weights = root / "weights.json"  # a real weights.json but for its 1e308 weights (they overflowed to 0 before)
    weights.write_text(json.dumps({"domains": ["good", "other"], "weights": {"good": 1e308, "other": 1e308},
                                   "size_weights": {"good": 0.5, "other": 0.5}, "domain_key": None,
                                   "sources": [{"name": "good", "path": str(store), "episodes": 4, "steps": 24},
                                               {"name": "other", "path": str(other), "episodes": 4, "steps": 24}]}))
    fine = root / "fine.json"
    fine.write_text(weights.read_text().replace("1e+308", "0.5"))
    unwritable = "/proc/remix-nope"
    s = f"data.paths=[{store},{other}]"
    scripted = "operator=scripted"
    return [
        ("remix-data", ["info"]), ("remix-data", ["frobnicate", str(store)]), ("remix-data", ["validate", "/nonexistent.zarr"]),
        ("remix-data", ["synthetic", str(a_file)]), ("remix-data", ["synthetic", unwritable]),
        ("remix-data", ["synthetic", "out", "synthetic.image_size=100000"]), ("remix-data", ["synthetic", "out", "synthetic.image_size=abc"]),
        ("remix-data", ["synthetic", "out", "synthetic.episode_length=0"]), ("remix-data", ["synthetic", "out", "synthetic.seed=-1"]),
        ("remix-weights", [s, f"out={a_file}"]), ("remix-weights", [s, f"out={unwritable}"]),
        ("remix-weights", ["data.paths=[/nonexistent.zarr]", "out=w"]), ("remix-weights", [f"data.paths={store}", "out=w"]),
        ("remix-weights", [s, "out=w", "actions.n_bins=1000000000"]), ("remix-weights", [s, "out=w", "actions.n_bins=0"]),
        ("remix-weights", [s, "out=w", "batch_size=1000000000"]), ("remix-weights", [s, "out=w", "batch_size=0"]),
        ("remix-weights", [s, "out=w", "seed=-1"]), ("remix-weights", [s, "out=w", "data.num_workers=-3"]),
        ("remix-weights", [s, "out=w", "reference.steps=2.5"]), ("remix-weights", [s, "out=w", "reference.steps=many"]),
        ("remix-weights", [s, "out=w", "device=tpu"]), ("remix-weights", [s, "out=w", "colour=red"]),
        ("remix-subset", ["weights=/nonexistent.json", "out=s"]), ("remix-subset", [f"weights={weights}", "out=s"], "ok"),
        ("remix-subset", [f"weights={fine}", "out=s", "fraction=1e-9"]), ("remix-subset", [f"weights={weights}", "out=s", "fraction=lots"]),
        ("remix-subset", [f"weights={fine}", "out=s", "fraction=2"]), ("remix-subset", [f"weights={fine}", f"out={a_file}"]),
        ("remix-subset", [f"weights={fine}", f"out={unwritable}"]),
        ("remix-train", [s, "model.cameras=[]", f"out={a_file}"]), ("remix-train", [s, "model.cameras=[]", "out=t", "train.steps=-1"]),
        ("remix-train", [s, "model.cameras=[]", "out=t", "train.steps=many"]), ("remix-train", [s, "model.cameras=[]", "out=t", "train.batch_size=1000000000"]),
        ("remix-train", ["data.paths=[/nonexistent.zarr]", "out=t"]), ("remix-train", [s, "model.cameras=[]", "out=t", "model.encoder=resnet1000"]),
        ("remix-train", [s, "model.cameras=[]", "out=t", "device=tpu"]), ("remix-train", [s, "model.cameras=[]", "out=t", "data.num_workers=-3"]),
        ("remix-policy-server", []), ("remix-policy-server", ["/nonexistent_checkpoint"]),
        ("remix-policy-server", ["replay:/nonexistent.zarr#0"]), ("remix-policy-server", [f"replay:{store}#0", "port=70000"]),
        ("remix-policy-server", [f"replay:{store}#0", "port=abc"]), ("remix-policy-server", [f"replay:{store}#0", "host=0.0.0.0"]),
        ("remix-robot-server", ["robot=remote"]), ("remix-robot-server", ["host=0.0.0.0", "port=6655"]),
        ("remix-robot-server", ["port=abc"]), ("remix-robot-server", ["port=70000"]),
        ("remix-robot-server", ["robot.control_hz=0", "port=6656"]), ("remix-robot-server", ["robot.control_hz=-5", "port=6657"]),
        ("remix-robot-server", ["robot.workspace_low=[1,1,1]", "port=6658"]),
        ("remix-collect", [scripted, "robot=sim", "teleop=sim_expert"]), ("remix-collect", [scripted, "robot=sim", "teleop=sim_expert", "task=pick", "num_demos=0"]),
        ("remix-collect", [scripted, "robot=sim", "teleop=sim_expert", "task=pick", "num_demos=x"]),
        ("remix-collect", [scripted, "robot=sim", "teleop=sim_expert", "task=pick", f"out={a_file}"]),
        ("remix-collect", [scripted, "robot=sim", "teleop=sim_expert", "task=pick", "robot.control_hz=0"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "tasks=[no_such_task]", "trials=1"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "trials=0"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "trials=many"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "trials=1000000000"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "blind=maybe"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "policy_options={device: tpu}"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", f"out={root}"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "goal_images={task: /nonexistent}"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "seed=-1"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "policy_timeout_s=0"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "policy_timeout_s=soon"]),
        ("remix-eval", [scripted, "robot=sim", "policies={a: 'scripted:expert'}", "tasks=[réunion]"]),
        ("remix-eval", [scripted, "robot=remote", "robot.address=tcp://127.0.0.1:1", "robot.step_margin_s=-1",
                        "policies={a: 'scripted:expert'}"]),
        ("remix-report", ["/nonexistent.sqlite"]), ("remix-report", [str(a_file)]), ("remix-report", [str(a_file), "plot=maybe"]),
        ("remix-report", [str(a_file), "since=notadate"]),
        ("remix-goal", [scripted, ]), ("remix-goal", [scripted, "task=t", f"out={a_file}"]), ("remix-goal", [scripted, "task=t", "goal_pose=[1,2]"]),
        ("remix-goal", [scripted, "task=t", "load=/nonexistent.png"]),
        ("remix-select", ["budget=0"]), ("remix-select", ["budget=2"]), ("remix-select", ["method=magic"]),
        ("remix-select", [f"out={a_file}"]),
    ]


def fuzz_settings(root: Path, scripts: dict, timeout: float) -> tuple[list[Result], list[Result]]:
    """Bad settings (must be refused in one line) and odd-but-valid ones marked "ok" (must succeed)."""
    results, benign = [], []
    for index, (script, args, *expect) in enumerate(settings_cases(root)):
        case = root / f"settings-{index}"
        case.mkdir()
        outcome, detail = run_cli(scripts[script], [script, *args], case, timeout)
        name = f"{script} {' '.join(args)}".replace(str(root), "<tmp>")
        if expect == ["ok"]:
            outcome = "accepted" if outcome == "accepted" else f"refused ({outcome})"
            benign.append(Result("benign settings", name, outcome, detail))
        else:
            results.append(Result("settings", name, outcome, detail))
    return results, benign


# ----------------------------------------------------------------------------------------- hostile messages
class _Errors(logging.Handler):
    """Counts the tracebacks the rpc servers log (an unexpected exception in a handler)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.count += 1


def _send_raw(address: str, frame: bytes, wait_s: float = 3.0) -> bytes | None:
    import zmq

    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    try:
        socket.send(frame)
        return socket.recv() if socket.poll(int(wait_s * 1000)) else None
    finally:
        socket.close()


def _reply_ok(reply: bytes) -> bool | None:
    from remix.common import rpc

    parsed = rpc._parse(reply, rpc._REPLY)
    body = parsed[2] if parsed is not None else reply
    try:
        return bool(rpc.unpack(body).get("ok"))
    except Exception:
        return None


def _frame(token: str | None, body: bytes, counter: int, client_id: bytes, nonce: bytes, sent_ns: int | None = None,
           ttl_ms: int = 5000) -> bytes:
    from remix.common import rpc

    key = rpc._key(token)
    return rpc._frame(rpc._REQUEST, key, client_id, counter, time.monotonic_ns() if sent_ns is None else sent_ns,
                      ttl_ms, nonce, body)


class _Forger:
    """Builds authenticated frames the way a client that knows the token would (after a real hello)."""

    def __init__(self, address: str, token: str) -> None:
        from remix.common import rpc

        self.address, self.token = address, token
        self.client_id = os.urandom(16)
        hello = _send_raw(address, _frame(token, b"", 0, self.client_id, bytes(16)))
        self.nonce = rpc.unpack(rpc._parse(hello, rpc._REPLY)[2])["result"]["nonce"]
        self.counter = 0

    def frame(self, body: bytes, **kwargs: object) -> bytes:
        self.counter += 1
        return _frame(self.token, body, self.counter, self.client_id, self.nonce, **kwargs)


def _hostile_messages(address: str, token: str, kind: str) -> list[tuple[str, Callable[[], bytes | None], str]]:
    """(name, send, expected) where expected is 'error' (an error reply) or 'dropped' (no reply is right)."""
    import msgpack

    from remix.common import rpc

    forger = _Forger(address, token)

    def call(method: str, *args: object, **kwargs: object) -> Callable[[], bytes | None]:
        return lambda: _send_raw(address, forger.frame(rpc.pack({"method": method, "args": list(args), "kwargs": kwargs})))

    def body(raw: bytes) -> Callable[[], bytes | None]:
        return lambda: _send_raw(address, forger.frame(raw))

    ndarray = lambda dtype, shape, payload=b"": msgpack.ExtType(1, msgpack.packb([dtype, shape]) + payload)  # noqa: E731
    captured = forger.frame(rpc.pack({"method": "info", "args": [], "kwargs": {}}))
    _send_raw(address, captured)
    nested = b"\x83\xa6method\xa4info\xa4args\x91" + b"\x91" * 100_000 + b"\xc0\xa6kwargs\x80"  # 100k-deep list
    cases = [
        ("garbage bytes", lambda: _send_raw(address, b"\xc1\xc1 not a frame"), "error"),
        ("empty message", lambda: _send_raw(address, b""), "error"),
        ("truncated header", lambda: _send_raw(address, b"RMX2" + bytes(20)), "error"),
        ("old-style msgpack with the token", lambda: _send_raw(address, rpc.pack({"method": "info", "token": token})), "error"),
        ("no token", lambda: _send_raw(address, _frame(None, rpc.pack({"method": "info"}), 1, os.urandom(16), bytes(16))), "error"),
        ("wrong token", lambda: _send_raw(address, _frame("guess", rpc.pack({"method": "info"}), 1, os.urandom(16), bytes(16))), "error"),
        ("forged mac, 20 MB body", lambda: _send_raw(address, _frame("guess", bytes(20 << 20), 1, os.urandom(16), bytes(16))), "error"),
        ("oversized 40 MB message", lambda: _send_raw(address, _frame(token, bytes(40 << 20), 1, os.urandom(16), bytes(16)), 1.5), "dropped"),
        ("replayed captured request", lambda: _send_raw(address, captured), "error"),
        ("counter from the past", lambda: _send_raw(address, _frame(token, rpc.pack({"method": "info"}), 1, forger.client_id, forger.nonce)), "error"),
        ("unknown client (no hello)", lambda: _send_raw(address, _frame(token, rpc.pack({"method": "info"}), 5, os.urandom(16), forger.nonce)), "error"),
        ("old server nonce", lambda: _send_raw(address, _frame(token, rpc.pack({"method": "info"}), 10**6, forger.client_id, os.urandom(16))), "error"),
        ("stale request (sent 60 s ago)", lambda: _send_raw(address, forger.frame(rpc.pack({"method": "info"}), sent_ns=time.monotonic_ns() - 60 * 10**9)), "error"),
        ("body not msgpack", body(b"\xc1\xc1\xc1"), "error"),
        ("body a list", body(rpc.pack([1, 2, 3])), "error"),
        ("method not a string", body(rpc.pack({"method": 5})), "error"),
        ("args not a list", body(rpc.pack({"method": "info", "args": 5})), "error"),
        ("kwargs with int keys", body(rpc.pack({"method": "info", "kwargs": {1: 2}})), "error"),
        ("unknown method", call("__init__"), "error"),
        ("private method", call("_checked_call"), "error"),
        ("too many arguments", call("info", 1, 2, 3), "error"),
        ("unexpected keyword", call("info", evil=1), "error"),
        ("ndarray with object dtype", body(msgpack.packb({"method": "info", "args": [ndarray("|O", [2], bytes(16))]})), "error"),
        ("ndarray claiming 10^12 elements", body(msgpack.packb({"method": "info", "args": [ndarray("<f4", [10**12], bytes(8))]})), "error"),
        ("ndarray with a bogus dtype", body(msgpack.packb({"method": "info", "args": [ndarray("zz9", [1], b"x")]})), "error"),
        ("100000-deep nesting", body(nested), "error"),
    ]
    if kind == "robot":
        cases += [
            ("send_action with a string", call("send_action", "left"), "error"),
            ("send_action with 100 values", call("send_action", np.zeros(100)), "error"),
            ("send_action with a dict", call("send_action", {"x": 1}), "error"),
            ("send_action with a 7x7 array", call("send_action", np.zeros((7, 7))), "error"),
            ("reset with a string seed", call("reset", seed="abc"), "error"),
            ("set_task of an unknown task", call("set_task", "no_such_task"), "error"),
        ]
    else:
        good_image = {"cam0": np.zeros((16, 16, 3), np.uint8)}
        cases += [
            ("act without images", call("act", {"state": np.zeros(7, np.float32)}), "error"),
            ("act with a 5000-pixel image", call("act", {"images": {"cam0": np.zeros((5000, 4, 3), np.uint8)}, "state": np.zeros(7)}), "error"),
            ("act with a float image", call("act", {"images": {"cam0": np.zeros((16, 16, 3))}, "state": np.zeros(7)}), "error"),
            ("act with a 2-d state", call("act", {"images": good_image, "state": np.zeros((2, 7))}), "error"),
            ("act with a string", call("act", "observation"), "error"),
            ("reset with None", call("reset", None), "error"),
        ]
    return cases


def _serve(kind: str, token: str):
    if kind == "robot":
        from robots.server import RobotServer
        from robots.sim import SimRobot

        robot = SimRobot(cameras={"cam0": (32, 32)})
        robot.connect()
        return RobotServer(robot, port=0, token=token).start(), robot.disconnect, "rpc"
    from remix.policy import ReplayPolicy
    from remix.policy.server import policy_server

    server = policy_server(ReplayPolicy(np.zeros((3, 7), np.float32)), "replay", token=token).start()
    return server, lambda: None, None


def fuzz_servers() -> list[Result]:
    from remix.common.rpc import RpcClient

    results = []
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    for kind in ("robot", "policy"):
        token = "fuzz-token"
        server, cleanup, attr = _serve(kind, token)
        rpc_server = getattr(server, attr) if attr else server
        try:
            for name, send, expected in _hostile_messages(rpc_server.address, token, kind):
                before = errors.count
                calls_before = rpc_server.calls
                try:
                    reply = send()
                except Exception as error:  # the fuzzer itself failed to build the message
                    results.append(Result(f"{kind} server", name, "traceback", f"fuzzer: {error!r}"))
                    continue
                ran = rpc_server.calls > calls_before
                alive = True
                try:
                    with RpcClient(rpc_server.address, token=token, timeout_s=5.0) as probe:
                        probe.ping()
                except Exception:
                    alive = False
                if errors.count > before:
                    outcome, detail = "traceback", "the server logged a traceback"
                elif not alive:
                    outcome, detail = "hang", "the server stopped answering"
                elif reply is None:
                    outcome = "clean" if expected == "dropped" else "hang"
                    detail = "dropped at the socket" if expected == "dropped" else "no reply"
                else:
                    ok = _reply_ok(reply)
                    outcome = "accepted" if ok or (expected == "error" and ran and name.startswith(("replay", "counter"))) else "clean"
                    detail = "ok reply" if ok else "error reply"
                results.append(Result(f"{kind} server", name, outcome, detail))
            results.append(_second_policy_client(rpc_server, token) if kind == "policy" else _stale_action(server, token))
        finally:
            server.close()
            cleanup()
    logging.getLogger().removeHandler(errors)
    return results


def _second_policy_client(server, token: str) -> Result:
    from remix.common.errors import RemixError
    from remix.policy.client import RemotePolicy

    obs = type("Obs", (), {"images": {"cam0": np.zeros((16, 16, 3), np.uint8)}, "state": np.zeros(7, np.float32),
                           "timestamps": {}})()
    first, second = RemotePolicy(server.address, token=token), RemotePolicy(server.address, token=token)
    first.reset(obs)
    try:
        second.reset(obs)
        outcome = "accepted"
    except RemixError:
        outcome = "clean"
    first.close()
    second.close()
    return Result("policy server", "second client resets another client's episode", outcome, "")


def _stale_action(server, token: str) -> Result:
    """An action that waited in the queue past its deadline (the server was busy) is not executed."""
    from remix.common.rpc import RpcClient, RpcTimeout

    robot = server.robot
    with RpcClient(server.rpc.address, token=token, timeout_s=10) as busy, RpcClient(server.rpc.address, token=token, timeout_s=0.3) as late:
        busy.call("reset")
        late.ping()  # the server knows this client's clock
        before = robot.target.position
        server.rpc.handlers["__busy__"] = lambda: time.sleep(1.0)
        blocker = threading.Thread(target=busy.call, args=("__busy__",))
        blocker.start()
        time.sleep(0.1)
        try:
            late.call("send_action", np.array([0.05, 0, 0, 0, 0, 0, 1.0]))
        except RpcTimeout:
            pass
        blocker.join()
        time.sleep(0.3)
        moved = robot.target.position != before
    return Result("robot server", "action executed after its deadline", "accepted" if moved else "clean", "")


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MiB, from /proc (VmRSS, VmHWM)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def oversized_flood(clients: int = 8, megabytes: int = 400) -> tuple[Result, str]:
    """Issue 14 finding 3: `clients` parallel `megabytes` MB messages to a token-protected `remix-robot-server`
    (the real console script, in its own process, so its RSS is its own). Before the fix its RSS grew to 3.7 GB;
    the socket now refuses a message over MAX_MESSAGE_BYTES from its size header, before reading it."""
    import subprocess

    import zmq

    from remix.common.rpc import RpcClient

    root = str(Path(__file__).resolve().parents[1])  # this checkout's code, as the other cases run it
    env = {**os.environ, "REMIX_ROBOT_TOKEN": "fuzz-token",
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    command = [sys.executable, "-c", "import sys; sys.argv[0] = 'remix-robot-server'; from robots.server import main; main()"]
    port = 20000 + os.getpid() % 20000
    proc = subprocess.Popen([*command, "robot=mock", f"port={port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    address = f"tcp://127.0.0.1:{port}"
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        if "serving" not in first:
            return Result("robot server", "8 parallel 400 MB messages", "hang", f"server did not start: {first.strip()}"), ""
        with RpcClient(address, token="fuzz-token", timeout_s=10.0) as client:
            client.call("reset")
        before, _ = _rss_mb(proc.pid)
        # one signed frame with a `megabytes` MB body, sent zero-copy by every client (the fuzzer holds it once)
        frame = _frame("fuzz-token", bytes(megabytes << 20), 1, os.urandom(16), bytes(16))
        replies = []

        def send() -> None:
            socket = zmq.Context.instance().socket(zmq.REQ)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(address)
            try:
                socket.send(frame, copy=False)
                replies.append(socket.poll(3000))  # a refused message gets no reply
            finally:
                socket.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=send) for _ in range(clients)]
        for thread in threads:
            thread.start()
        peak_seen = before
        while any(t.is_alive() for t in threads):
            peak_seen = max(peak_seen, _rss_mb(proc.pid)[0])
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        with RpcClient(address, token="fuzz-token", timeout_s=10.0) as client:
            alive = "send_action" in client.ping()
        after, peak = _rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    grew = max(peak, peak_seen) - before
    figure = (f"robot server RSS under {clients} parallel {megabytes} MB messages (token set): {before:.0f} MiB before, "
              f"peak {max(peak, peak_seen):.0f} MiB (+{grew:.0f}), {after:.0f} MiB after; {sum(bool(r) for r in replies)} "
              f"replies; still serving: {'yes' if alive else 'NO'}; {elapsed:.1f} s")
    outcome = "clean" if alive and grew < 256 and not any(replies) else ("hang" if not alive else "accepted")
    return Result("robot server", f"{clients} parallel {megabytes} MB messages", outcome, figure), figure


# ----------------------------------------------------------------------------------------- report
def _table(results: list[Result]) -> None:
    by_class: dict[str, Counter] = {}
    for r in results:
        by_class.setdefault(r.klass, Counter())[r.outcome] += 1
    print(f"{'class':<16} {'tried':>6} " + " ".join(f"{o:>10}" for o in OUTCOMES))
    total = Counter()
    for klass, counts in by_class.items():
        print(f"{klass:<16} {sum(counts.values()):>6} " + " ".join(f"{counts[o]:>10}" for o in OUTCOMES))
        total.update(counts)
    print(f"{'total':<16} {sum(total.values()):>6} " + " ".join(f"{total[o]:>10}" for o in OUTCOMES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=25.0, help="seconds per CLI case before it counts as a hang")
    parser.add_argument("--only", default="stores,settings,servers,flood")
    parser.add_argument("--verbose", action="store_true", help="print every case, not only the failing ones")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import torch

    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads}, CLI timeout {args.timeout:g} s")
    scripts = _scripts()
    only = set(args.only.split(","))
    results: list[Result] = []
    benign: list[Result] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="remix-fuzz-") as tmp:
        root = Path(tmp)
        if "stores" in only:
            found, benign = fuzz_stores(root / "stores", scripts, args.timeout) if (root / "stores").mkdir() is None else ([], [])
            results += found
        if "settings" in only:
            (root / "settings").mkdir()
            found, odd = fuzz_settings(root / "settings", scripts, args.timeout)
            results += found
            benign += odd
        if "servers" in only:
            results += fuzz_servers()
        figure = ""
        if "flood" in only:
            flood, figure = oversized_flood()
            results.append(flood)
    _table(results)
    if figure:
        print(figure)
    if benign:
        kept = sum(r.outcome == "accepted" for r in benign)
        print(f"benign inputs (damage a killed writer leaves, 1e308 weights; must succeed): {kept}/{len(benign)} accepted")
    print(f"({time.perf_counter() - started:.0f} s)")
    for r in results + [b for b in benign if b.outcome != "accepted"]:
        if args.verbose or r.outcome not in ("clean",) and not (r in benign and r.outcome == "accepted"):
            print(f"  [{r.outcome}] {r.klass}: {r.name} -> {r.detail}")
    bad = sum(r.outcome != "clean" for r in results) + sum(b.outcome != "accepted" for b in benign)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
