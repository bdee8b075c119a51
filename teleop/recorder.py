"""Record episodes off the control-loop thread.

The control loop hands each step to `EpisodeRecorder.add_step`, which only enqueues references (O(1));
a worker thread copies frames into the episode buffer and, when the operator keeps the episode,
writes it with `EpisodeStore.add_episode` (durable once it returns: the store commits
`meta/episode_ends` last). A dropped episode, or one the process dies in the middle of, never reaches
the store, so a crash loses at most the episode in progress.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from remix.data import EpisodeStore
from robots.robot import Observation


@dataclass
class _Buffer:
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)
    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.actions)


class EpisodeRecorder:
    """One worker thread that owns the episode buffer and every store write."""

    def __init__(self, store: EpisodeStore) -> None:
        self.store = store
        self.cameras = tuple(store.cameras)
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._buffer = _Buffer()
        self._thread = threading.Thread(target=self._work, name="episode-recorder", daemon=True)
        self._thread.start()
        self.steps_seen = 0

    # ------------------------------------------------------------------------------ loop side
    def begin(self) -> None:
        self._queue.put(("begin", None))

    def add_step(self, observation: Observation, action: np.ndarray) -> None:
        """Queue one step (observation before the action, and the action applied). Never blocks."""
        self._queue.put(("step", (observation, np.array(action, dtype=np.float32))))

    def drop(self) -> None:
        self._queue.put(("drop", None))

    def commit(self, **fields: Any) -> Future[int]:
        """Write the buffered episode with its per-episode fields; the future gives its store index."""
        done: Future[int] = Future()
        self._queue.put(("commit", (fields, done)))
        return done

    def length(self) -> Future[int]:
        """Steps buffered so far, once every queued step is processed."""
        done: Future[int] = Future()
        self._queue.put(("length", done))
        return done

    def close(self) -> None:
        """Finish queued work (a pending commit completes) and stop the worker."""
        self._queue.put(("close", None))
        self._thread.join()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------------------ worker side
    def _work(self) -> None:
        while True:
            kind, payload = self._queue.get()
            if kind == "close":
                return
            if kind in ("begin", "drop"):
                self._buffer = _Buffer()
            elif kind == "step":
                self._take_step(*payload)
            elif kind == "length":
                payload.set_result(len(self._buffer))
            elif kind == "commit":
                fields, done = payload
                try:
                    done.set_result(self._write(fields))
                except BaseException as error:  # reported to the loop through the future
                    done.set_exception(error)
                self._buffer = _Buffer()

    def _take_step(self, observation: Observation, action: np.ndarray) -> None:
        self.steps_seen += 1
        buffer = self._buffer
        for camera in self.cameras:
            buffer.images.setdefault(camera, []).append(np.array(observation.images[camera], dtype=np.uint8))
        buffer.states.append(np.asarray(observation.state, dtype=np.float32).copy())
        buffer.actions.append(action)
        buffer.times.append(float(observation.timestamps.get("state", np.nan)))

    def _write(self, fields: dict[str, Any]) -> int:
        buffer = self._buffer
        arrays: dict[str, np.ndarray] = {
            "action": np.stack(buffer.actions),
            "state": np.stack(buffer.states),
            "timestamp": np.asarray(buffer.times, dtype=np.float64),
        }
        for camera in self.cameras:
            arrays[f"images/{camera}"] = np.stack(buffer.images[camera])
        return self.store.add_episode(arrays, **fields)
