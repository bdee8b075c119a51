"""Operator input: scripted answers for CI, single-key polling on a real terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap

import pytest

from remix.common.errors import RemixError
from remix.common.operator_input import ScriptedInput, TerminalInput, make_operator


def test_scripted_answers_keys_and_exhaustion():
    operator = ScriptedInput(answers=["y", ""], keys=[None, "s"])
    assert operator.ask("keep?", ["y", "n"]) == "y"
    assert operator.ask("note?", default="none") == "none"
    assert operator.poll_key() is None and operator.poll_key() == "s" and operator.poll_key() is None
    assert operator.prompts == ["keep?", "note?"]
    with pytest.raises(RemixError, match=r"no answer left for prompt 'again\?'"):
        operator.ask("again?")
    operator.push_answers("maybe")
    with pytest.raises(RemixError, match="is not one of"):
        operator.ask("keep?", ["y", "n"])


def test_terminal_input_refuses_without_a_tty(monkeypatch):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    with pytest.raises(RemixError, match="needs an interactive terminal"):
        TerminalInput()
    with pytest.raises(RemixError, match="unknown operator input 'voice'"):
        make_operator("voice")


CHILD = textwrap.dedent(
    """
    import time
    from remix.common.operator_input import TerminalInput
    operator = TerminalInput()
    print("ready", flush=True)
    deadline, key = time.time() + 20, None
    while key is None and time.time() < deadline:
        key = operator.poll_key()
        time.sleep(0.01)
    print("key", repr(key), flush=True)
    print("answer", operator.ask("keep?", ["y", "n"]), flush=True)
    """
)


def test_terminal_input_reads_single_keys_without_enter():
    master, slave = pty.openpty()
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=slave, stdout=subprocess.PIPE, text=True)
    os.close(slave)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.write(master, b"s")
        assert child.stdout.readline().strip() == "key 's'"
        os.write(master, b"y\n")
        assert child.stdout.readline().strip().endswith("answer y")
        assert child.wait(timeout=20) == 0
    finally:
        child.kill()
        os.close(master)
