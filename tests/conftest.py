"""Suite-wide settings: one torch thread (2-core CI machines thrash otherwise) and headless MuJoCo."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402, F401  (loads triton's LLVM before Mesa's; see robots/sim.py)

torch.set_num_threads(1)


@pytest.fixture
def count_rate_ticks(monkeypatch):
    """Patch `module.Rate` with a subclass that counts its ticks; returns the list of rates the code made."""
    from remix.common.rate import Rate

    def install(module) -> list:
        made: list[Rate] = []

        class Counting(Rate):
            ticks = 0

            def __init__(self, hz: float) -> None:
                super().__init__(hz)
                made.append(self)

            def sleep(self) -> float:
                self.ticks += 1
                return super().sleep()

        monkeypatch.setattr(module, "Rate", Counting, raising=False)
        return made

    return install
