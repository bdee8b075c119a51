"""Suite-wide settings: one torch thread (2-core CI machines thrash otherwise) and headless MuJoCo."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402
import torchvision  # noqa: E402, F401  (loads triton's LLVM before Mesa's; see robots/sim.py)

torch.set_num_threads(1)
