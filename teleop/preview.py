"""Optional live camera preview, drawn on its own thread so a slow window never stalls control.

The loop calls `show(images)`, which only replaces the newest frame set; the preview thread draws
at its own rate. Without a display (headless machines, CI) the OpenCV window fails once, the preview
says so and turns itself off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

import numpy as np

log = logging.getLogger("teleop.preview")


def opencv_display(name: str, image: np.ndarray) -> None:
    import cv2

    cv2.imshow(name, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.waitKey(1)


class CameraPreview:
    """Latest-frame preview window(s); `display(name, rgb)` draws one camera."""

    def __init__(self, display: Callable[[str, np.ndarray], None] = opencv_display, rate_hz: float = 15.0,
                 scale: int = 4) -> None:
        self._display = display
        self._period = 1.0 / rate_hz
        self._scale = max(1, int(scale))
        self._latest: Mapping[str, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.frames_shown = 0
        self.failed: str | None = None
        self._thread = threading.Thread(target=self._run, name="camera-preview", daemon=True)
        self._thread.start()

    def show(self, images: Mapping[str, np.ndarray]) -> None:
        with self._lock:
            self._latest = images

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._done.wait(self._period):
            with self._lock:
                images, self._latest = self._latest, None
            if not images:
                continue
            try:
                for name, image in images.items():
                    big = np.repeat(np.repeat(image, self._scale, axis=0), self._scale, axis=1)
                    self._display(f"remix-collect {name}", big)
                self.frames_shown += 1
            except Exception as error:  # no display: tell once, stop previewing, keep collecting
                self.failed = str(error).splitlines()[0] if str(error) else type(error).__name__
                log.warning("camera preview unavailable (%s); collecting without it", self.failed)
                return
