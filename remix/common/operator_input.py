"""Pluggable operator input.

Everything that asks a person something (confirm a goal image, keep/discard a demo, label a trial,
press the stop key) goes through an `OperatorInput`, so tests and CI script the answers and nothing
ever waits on a terminal.
"""

from __future__ import annotations

import atexit
import os
import select
import sys
import termios
import threading
import tty
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from remix.common.errors import RemixError


class OperatorInput(ABC):
    """Where operator answers and key presses come from."""

    @abstractmethod
    def ask(self, prompt: str, choices: Sequence[str] | None = None, default: str | None = None) -> str:
        """Block until the operator answers; with `choices`, the answer is one of them."""

    @abstractmethod
    def poll_key(self) -> str | None:
        """Return a pending key press (single character or name) without blocking, else None."""

    def say(self, message: str) -> None:
        """Show a message to the operator."""
        print(message, file=sys.stderr, flush=True)


class ScriptedInput(OperatorInput):
    """Answers and keys from lists, for tests and unattended runs.

    `answers` are consumed by `ask` in order; `keys` by `poll_key`, where None entries mean "no key
    this poll". Running out of answers raises, so a test never hangs on an unexpected prompt.
    """

    def __init__(self, answers: Iterable[str] = (), keys: Iterable[str | None] = ()) -> None:
        self._answers = deque(answers)
        self._keys = deque(keys)
        self._lock = threading.Lock()
        self.prompts: list[str] = []
        self.messages: list[str] = []

    def push_answers(self, *answers: str) -> None:
        with self._lock:
            self._answers.extend(answers)

    def push_keys(self, *keys: str | None) -> None:
        with self._lock:
            self._keys.extend(keys)

    def ask(self, prompt: str, choices: Sequence[str] | None = None, default: str | None = None) -> str:
        with self._lock:
            self.prompts.append(prompt)
            if not self._answers:
                raise RemixError(f"scripted operator input has no answer left for prompt {prompt!r}")
            answer = self._answers.popleft()
        answer = answer or (default or "")
        if choices is not None and answer not in choices:
            raise RemixError(f"scripted answer {answer!r} to {prompt!r} is not one of {list(choices)}")
        return answer

    def poll_key(self) -> str | None:
        with self._lock:
            return self._keys.popleft() if self._keys else None

    def say(self, message: str) -> None:
        self.messages.append(message)


class TerminalInput(OperatorInput):
    """Reads answers and keys from an interactive terminal (stdin must be a TTY).

    Keys are read one at a time without Enter (the terminal is put in cbreak mode while polling and
    restored for questions and at exit), so a stop key acts at once.
    """

    def __init__(self) -> None:
        if not sys.stdin or not sys.stdin.isatty():
            raise RemixError(
                "operator input needs an interactive terminal; run from a terminal or pass a scripted "
                "input (operator=scripted operator.answers=[...])"
            )
        self._fd = sys.stdin.fileno()
        self._saved_mode: list | None = None
        atexit.register(self._restore_mode)

    def _cbreak(self) -> None:
        if self._saved_mode is None:
            self._saved_mode = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)

    def _restore_mode(self) -> None:
        if self._saved_mode is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_mode)
            self._saved_mode = None

    def ask(self, prompt: str, choices: Sequence[str] | None = None, default: str | None = None) -> str:
        self._restore_mode()
        suffix = f" [{'/'.join(choices)}]" if choices else ""
        while True:
            answer = input(f"{prompt}{suffix} ").strip() or (default or "")
            if choices is None or answer in choices:
                return answer
            print(f"please answer one of {list(choices)}", file=sys.stderr)

    def poll_key(self) -> str | None:
        self._cbreak()
        ready, _, _ = select.select([self._fd], [], [], 0)
        if not ready:
            return None
        key = os.read(self._fd, 1).decode(errors="ignore")
        return key or None


@dataclass
class OperatorConfig:
    """The `operator` config group of remix-eval, remix-goal, remix-collect: `operator=terminal|scripted`."""

    _target_: str = "remix.common.operator_input.TerminalInput"  # the OperatorInput class
    name: str = "${oc.env:USER,unknown}"  # recorded with every trial / demo
    answers: list[str] = field(default_factory=list)  # scripted: answers to the prompts, in order
    keys: list[str] = field(default_factory=list)  # scripted: key presses, one per poll


OPERATOR_INPUTS = {"terminal": TerminalInput, "scripted": ScriptedInput}


def register_operator_group() -> None:
    """`operator=terminal` (a person at the terminal) and `operator=scripted` (answers from lists, for CI)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, cls in OPERATOR_INPUTS.items():
        store.store(group="operator", name=name, node=OperatorConfig(_target_=f"{__name__}.{cls.__name__}"))


def make_operator(target: str = "remix.common.operator_input.TerminalInput", answers: Sequence[str] = (),
                  keys: Sequence[str] = ()) -> OperatorInput:
    """Build the operator input a config's `_target_` names (TerminalInput or ScriptedInput)."""
    by_target = {f"{__name__}.{cls.__name__}": cls for cls in OPERATOR_INPUTS.values()}
    cls = by_target.get(target) or OPERATOR_INPUTS.get(target)
    if cls is None:
        raise RemixError(f"unknown operator input {target!r}; use operator=terminal or operator=scripted")
    return ScriptedInput(answers, keys) if cls is ScriptedInput else TerminalInput()
