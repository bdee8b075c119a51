"""The logcat protocol parser on realistic app lines and on garbage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teleop.protocol import (
    ControllerReading,
    LogcatParser,
    MalformedLine,
    extract_payload,
    format_payload,
    parse_payload,
)

RIGHT = (
    "0.998201 -0.012534 0.058612 0.124511 0.011020 0.999810 0.016172 -0.302941 "
    "-0.058916 -0.015479 0.998143 -0.287310 0.000000 0.000000 0.000000 1.000000 "
)
LEFT = (
    "1.000000 0.000000 0.000000 -0.201000 0.000000 1.000000 0.000000 -0.310000 "
    "0.000000 0.000000 1.000000 -0.250000 0.000000 0.000000 0.000000 1.000000 "
)
BUTTONS = (
    "R,A,RG,rightJS 0.000000 -0.250000,rightTrig 0.823529,rightGrip 1.000000,"
    "L,X,leftJS 0.000000 0.000000,leftTrig 0.000000,leftGrip 0.000000"
)
LINE = f"11-22 01:02:03.456  4321  4390 I wE9ryARX: r:{RIGHT}|l:{LEFT}&{BUTTONS}"


def test_realistic_line_parses_poses_buttons_and_analog_values() -> None:
    reading = LogcatParser().feed(LINE)
    assert reading is not None
    assert set(reading.poses) == {"r", "l"}
    assert reading.poses["r"][0, 3] == pytest.approx(0.124511)
    assert reading.poses["r"][2, 0] == pytest.approx(-0.058916)  # row-major
    assert reading.poses["l"][:3, 3] == pytest.approx([-0.201, -0.31, -0.25])
    assert reading.pressed == {"A", "RG", "X"}
    assert reading.sides == {"r", "l"}
    assert reading.value("rightTrig") == pytest.approx(0.823529)
    assert reading.analog["rightJS"] == pytest.approx((0.0, -0.25))
    assert reading.value("missing", default=-1.0) == -1.0


def test_only_right_controller_tracked() -> None:
    reading = parse_payload(f"r:{RIGHT}&R,rightJS 0.0 0.0,rightTrig 0.0,rightGrip 0.0")
    assert set(reading.poses) == {"r"} and reading.sides == {"r"} and reading.pressed == frozenset()


def test_no_controller_tracked_is_a_valid_empty_reading() -> None:
    reading = parse_payload("&")
    assert reading.poses == {} and reading.pressed == frozenset()


def test_format_round_trips() -> None:
    pose = np.eye(4)
    pose[:3, 3] = (0.1, -0.2, 0.3)
    reading = ControllerReading(
        poses={"r": pose}, pressed=frozenset({"RG", "A"}), analog={"rightTrig": (0.5,), "rightJS": (0.1, 0.2)},
        sides=frozenset({"r"}),
    )
    back = parse_payload(format_payload(reading))
    assert np.allclose(back.poses["r"], pose)
    assert back.pressed == reading.pressed and back.sides == reading.sides
    assert back.analog["rightJS"] == pytest.approx((0.1, 0.2))


def test_tag_must_be_followed_by_colon() -> None:
    assert extract_payload("I wE9ryARXfoo: r:1") is None
    assert extract_payload("I ActivityManager: Start proc 123") is None
    assert extract_payload("I wE9ryARX: &R") == "&R"


@pytest.mark.parametrize(
    "payload, reason",
    [
        (f"r:{RIGHT}", "exactly one '&'"),  # cut before the buttons
        (f"r:{RIGHT}&R&L", "exactly one '&'"),
        (f"r:{RIGHT[:60]}&R", "values, expected 16"),  # cut mid-pose
        (f"r:{RIGHT.replace('0.124511', 'nan')}&R", "NaN or inf"),
        (f"r:{RIGHT.replace('0.124511', '0.12.4')}&R", "not a number"),
        (f"x:{RIGHT}&R", "'r:' or 'l:'"),
        (f"r:{RIGHT}|r:{RIGHT}&R", "twice"),
        (f"r:{RIGHT.replace('1.000000 ', '2.000000 ', 1)}&R", "bottom row"),
        ("r:" + " ".join(["2"] * 12 + ["0", "0", "0", "1"]) + "&R", "not a rotation"),
        ("r:" + "-1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1" + "&R", "not a rotation"),  # reflection
        ("r:" + "1 0 0 1e9 0 1 0 0 0 0 1 0 0 0 0 1" + "&R", "implausibly far"),
        (f"r:{RIGHT}&R,rightTrig abc", "not a number"),
        (f"r:{RIGHT}&R,rightTrig inf", "NaN or inf"),
        (f"r:{RIGHT}&R,\x00\x01junk", "not a button name"),
    ],
)
def test_malformed_payloads_name_the_problem(payload: str, reason: str) -> None:
    with pytest.raises(MalformedLine, match=reason):
        parse_payload(payload)


def test_parser_counts_and_skips_garbage_without_raising() -> None:
    parser = LogcatParser()
    lines = [
        "--------- beginning of main",
        LINE,
        "11-22 01:02:03.470  4321  4390 I wE9ryARX: r:0.99 0.01",  # truncated by the USB buffer
        "11-22 01:02:03.480  1000  1010 D SensorService: proximity 0",
        "\ufffd\ufffd\x00 wE9ryARX: \ufffd&",
        LINE,
        "",
    ]
    readings = [parser.feed(line) for line in lines]
    assert [r is not None for r in readings] == [False, True, False, False, False, True, False]
    assert parser.stats.samples == 2
    assert parser.stats.malformed == 2
    assert parser.stats.foreign == 3
    assert parser.stats.lines == len(lines)
    assert parser.stats.last_error


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    parser = LogcatParser()
    parser.feed(text)
    parser.feed("I wE9ryARX: " + text)
    assert parser.stats.lines == 2
    assert parser.stats.samples + parser.stats.malformed + parser.stats.foreign == 2


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(LINE)))
def test_any_truncation_of_a_real_line_is_skipped_or_valid(cut: int) -> None:
    parser = LogcatParser()
    reading = parser.feed(LINE[:cut])
    if reading is not None:  # a cut inside the trailing analog values can still be a valid line
        assert set(reading.poses) == {"r", "l"}
