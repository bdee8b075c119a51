"""Cameras: OpenCV capture (from a real video file), mock camera, crop/resize, config errors, timeouts in a robot."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sdk_fakes import FakeFrankaArm

from remix.common.errors import ConfigError
from robots.cameras import CameraTimeout, ImageTransform, MockCamera, OpenCVCamera, make_cameras
from robots.robot import RobotFault


def write_video(path, frames: int = 3, size=(60, 80)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (size[1], size[0]))
    for k in range(frames):
        frame = np.zeros((*size, 3), np.uint8)
        frame[..., 2] = 200  # red in BGR
        frame[:, k * 10 : k * 10 + 5] = 255
        writer.write(frame)
    writer.release()


def test_opencv_camera_reads_rgb_resized_frames_until_the_stream_ends(tmp_path) -> None:
    write_video(tmp_path / "clip.avi")
    camera = OpenCVCamera("cam0", str(tmp_path / "clip.avi"), 30, 40)
    camera.start()
    frames = [camera.read() for _ in range(3)]
    assert frames[0].image.shape == (30, 40, 3) and frames[0].image[15, 35, 0] > 150, "BGR in, RGB out"
    assert frames[0].capture_time <= frames[0].receive_time
    with pytest.raises(CameraTimeout, match="no frame"):
        camera.read()
    camera.stop()


def test_transform_crops_then_resizes() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255
    out = ImageTransform(10, 10, crop=(0, 100, 100, 100))(image)
    assert out.shape == (10, 10, 3) and out.min() == 255
    with pytest.raises(ConfigError, match="crop"):
        ImageTransform(10, 10, crop=(0, 0, 0, 5))


def test_camera_config_errors_are_one_line() -> None:
    shape = {"cam0": [64, 64]}
    with pytest.raises(ConfigError, match="unknown _target_ 'robots.cameras.Webcam'"):
        make_cameras(shape, {"cam0": {"_target_": "robots.cameras.Webcam"}})
    with pytest.raises(ConfigError, match="cannot import 'nowhere.Cam'"):
        make_cameras(shape, {"cam0": {"_target_": "nowhere.Cam"}})
    with pytest.raises(ConfigError, match="config is invalid"):
        make_cameras(shape, {"cam0": {"_target_": "robots.cameras.MockCamera", "colour": "red"}})
    with pytest.raises(ConfigError, match=r"'type: realsense' is now '_target_: robots.realsense.RealSenseCamera'"):
        make_cameras(shape, {"cam0": {"type": "realsense", "serial": "1"}})
    with pytest.raises(ConfigError, match=r"no camera_devices.cam0"):
        make_cameras(shape, {})
    assert make_cameras(None, {"cam0": {"_target_": "robots.cameras.MockCamera"}}) == {}  # robot.cameras=null
    with pytest.raises(ConfigError, match=r"is not a shape; write cameras: \{cam0: \[H, W\]\}"):
        make_cameras({"cam0": 64}, {"cam0": {"_target_": "robots.cameras.MockCamera"}})


def test_old_camera_shape_spellings_name_the_new_form() -> None:
    """height/width inside the camera's device settings were the hardware robots' old spelling."""
    old = {"cam0": {"_target_": "robots.cameras.MockCamera", "height": 48, "width": 64}}
    with pytest.raises(ConfigError) as error:
        make_cameras(old, None)
    assert "write cameras: {cam0: [48, 64]} and put its device settings" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"camera_devices.cam0.height: the frame shape is set in one place only"):
        make_cameras({"cam0": [48, 64]}, old)
    cameras = make_cameras({"cam0": [48, 64]}, {"cam0": {"_target_": "robots.cameras.MockCamera"}})
    assert cameras["cam0"].shape == (48, 64)


def test_several_mock_cameras_on_a_real_robot_config_and_camera_loss() -> None:
    pytest.importorskip("franky")  # the Franka backend builds real franky motion objects
    from robots.franka import FrankaRobot

    robot = FrankaRobot(robot_factory=FakeFrankaArm, cameras={"cam0": [48, 64], "wrist": [32, 32]},
                         camera_devices={"cam0": {"_target_": "robots.cameras.MockCamera"},
                                         "wrist": {"_target_": "robots.cameras.MockCamera"}})
    assert robot.observation_spec.cameras == {"cam0": (48, 64), "wrist": (32, 32)}
    with robot:
        obs = robot.reset()
        assert obs.images["cam0"].shape == (48, 64, 3) and obs.images["wrist"].shape == (32, 32, 3)
        assert set(obs.timestamps) == {"cam0", "wrist", "state"}
        camera = robot.cameras["wrist"]
        assert isinstance(camera, MockCamera)
        camera.fail_next = 10
        with pytest.raises(RobotFault, match="wrist") as info:
            robot.get_observation()
        assert info.value.kind == "camera"
