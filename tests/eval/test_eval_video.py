"""Trial videos: frame count and content survive encoding; half-written files never get a final name."""

import numpy as np
import pytest

from eval.video import TrialVideo, read_video_frames, remove_partial_videos, tile_frames
from remix.common.errors import RemixError


def solid(color, size=(48, 64)):
    frame = np.zeros((*size, 3), np.uint8)
    frame[:] = color
    return frame


def test_video_roundtrip_keeps_every_frame_and_its_colour(tmp_path):
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 200, 50), (10, 10, 10)]
    video = TrialVideo(tmp_path / "videos" / "trial.mp4", fps=10.0)
    for color in colors:
        video.write(solid(color))
    assert video.partial_path.exists() and not video.path.exists()  # not published before the trial ends
    path = video.finish()
    assert path == tmp_path / "videos" / "trial.mp4" and path.exists() and not video.partial_path.exists()
    frames = read_video_frames(path)
    assert len(frames) == len(colors)
    for frame, color in zip(frames, colors):
        assert frame.shape == (48, 64, 3)
        assert np.abs(frame.reshape(-1, 3).mean(0) - color).max() < 12  # RGB order kept through BGR encoding


def test_discard_and_crash_leftovers(tmp_path):
    video = TrialVideo(tmp_path / "a.mp4", fps=5.0)
    video.write(solid((1, 2, 3)))
    video.discard()
    assert not any(tmp_path.iterdir())
    assert TrialVideo(tmp_path / "empty.mp4", fps=5.0).finish() is None  # no frames, no file
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "t.partial.mp4").write_bytes(b"half")
    (tmp_path / "x" / "done.mp4").write_bytes(b"kept")
    assert remove_partial_videos(tmp_path) == 1
    assert (tmp_path / "x" / "done.mp4").exists()


def test_tile_frames_side_by_side_and_errors():
    tiled = tile_frames({"wrist": solid((0, 0, 255), (32, 32)), "side": solid((255, 0, 0), (64, 48))}, ("side", "wrist"))
    assert tiled.shape == (64, 48 + 64, 3)
    assert tuple(tiled[0, 0]) == (255, 0, 0) and tuple(tiled[0, -1]) == (0, 0, 255)
    with pytest.raises(RemixError, match="not in the robot's observation"):
        tile_frames({"side": solid((0, 0, 0))}, ("top",))
    with pytest.raises(ValueError, match="uint8"):
        tile_frames({"side": np.zeros((4, 4, 3), np.float32)})
