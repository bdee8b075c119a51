"""Policy speed: inference latency per chunk and per action, and data loader vs training step.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/policy_inference.py [--threads 1] [--repeats 5] [--quick]

Inference (random weights, 224x224, one camera, 2-frame history + goal, chunk of 4, DDIM 10 steps):
  encode 1 frame   = the ResNet on one (frame, goal, coordinates) stack;
  denoise          = the DDIM-10 loop vs DDPM over all 100 training steps (baseline, same run);
  per chunk        = an `act()` that replans from two new frames (chunk execution, every 4th step);
  per action       = mean `act()` over a rollout with chunk execution (one chunk per 4 actions), and
                     median with temporal ensembling (a chunk every action, one new frame encoded).
Data: samples/s of the training DataLoader (synthetic 224x224 store; it reads windows and draws
augmentation parameters) against the training step (batched augmentation + forward + backward,
ResNet-18 at 224x224), both at batch 16; and the batched augmentation against torchvision's
per-sample RandomResizedCrop + ColorJitter on the CPU (the baseline it replaced).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from remix.data.mixture import WeightedDomainSampler
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.policy.augment import AugmentConfig, apply_augmentation, draw_params
from remix.policy.config import ModelConfig
from remix.policy.data import (
    MixtureConfig,
    MixtureDataset,
    discover_domains,
    fit_normalization,
)
from remix.policy.inference import DiffusionPolicy
from remix.policy.model import DiffusionPolicyNet, diffusion_loss, make_scheduler, sample_actions
from remix.policy.normalization import Normalization


@dataclass(frozen=True)
class Frame:
    images: dict[str, np.ndarray]
    state: np.ndarray
    timestamps: dict[str, float]


def frame(rng: np.random.Generator, size: int = 224) -> Frame:
    return Frame({"cam0": rng.integers(0, 256, (size, size, 3), dtype=np.uint8)}, rng.normal(size=7).astype(np.float32), {})


def normalization() -> Normalization:
    rng = np.random.default_rng(0)
    actions = np.concatenate([rng.normal(0, 0.02, (500, 6)), rng.integers(0, 2, (500, 1))], axis=1)
    return Normalization.fit({"robot": actions}, {"robot": rng.normal(size=(500, 7))}, (6,), 5.0, "robot")


def timed(fn, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inference(encoder: str, repeats: int) -> None:
    config = ModelConfig(encoder=encoder, image_size=(224, 224), horizon=4)
    net = DiffusionPolicyNet(config).eval()
    rng = np.random.default_rng(0)
    image = torch.zeros(1, 1, 1, 3, 224, 224, dtype=torch.uint8)
    goal = torch.zeros(1, 1, 3, 224, 224, dtype=torch.uint8)
    with torch.no_grad():
        condition = net.encode(image.expand(-1, -1, 2, -1, -1, -1), goal)
        encode_frame = timed(lambda: net.frame_features(image, goal), repeats)
        head = {kind: timed(lambda k=kind, n=steps: sample_actions(net, make_scheduler(config, k), condition, n), repeats)
                for kind, steps in (("ddim", 10), ("ddpm", config.num_train_timesteps))}

    def rollout(execution: str, steps: int) -> list[float]:
        policy = DiffusionPolicy(net, normalization(), execution=execution, sampler="ddim", inference_steps=10)
        frames = [frame(rng) for _ in range(steps)]
        policy.reset(frames[0])
        times = []
        for observation in frames:
            start = time.perf_counter()
            policy.act(observation)
            times.append(time.perf_counter() - start)
        return times[1:]  # the first step encodes one frame for both history slots

    chunked = rollout("chunk", 1 + 4 * max(2, repeats))
    ensembled = rollout("ensemble", 1 + max(4, repeats))
    per_chunk = statistics.median(chunked[3::4])  # replanning steps: two new frames + DDIM-10
    per_action_chunk = statistics.mean(chunked)
    per_action_ensemble = statistics.median(ensembled)  # one new frame + DDIM-10 each step
    params = sum(p.numel() for p in net.parameters()) / 1e6
    print(f"{encoder:9s} {params:5.1f}M params | encode 1 frame {1e3 * encode_frame:6.1f} ms | denoise DDIM-10 "
          f"{1e3 * head['ddim']:5.1f} ms vs DDPM-{config.num_train_timesteps} {1e3 * head['ddpm']:6.1f} ms "
          f"({head['ddpm'] / head['ddim']:4.1f}x)")
    print(f"{'':9s} per chunk (2 frames + DDIM-10) {1e3 * per_chunk:6.1f} ms | per action: chunk execution "
          f"{1e3 * per_action_chunk:6.1f} ms, temporal ensembling {1e3 * per_action_ensemble:6.1f} ms "
          f"(cached frame embedding: {per_chunk / per_action_ensemble:3.1f}x cheaper than a fresh chunk)")


def loader_vs_model(workers: list[int], batches: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="remix-bench-"))
    make_synthetic_store(root / "bench.zarr", SyntheticDomain("bench", num_episodes=8, episode_length=20, image_size=224))
    config = ModelConfig(encoder="resnet18", image_size=(224, 224), horizon=4)
    domains = discover_domains(MixtureConfig(paths=(str(root / "bench.zarr"),), val_fraction=0.0))
    dataset = MixtureDataset(domains, config, fit_normalization(domains, config, None), "train", AugmentConfig())
    batch_size = 16
    sampler = WeightedDomainSampler(dataset.sizes, [1.0], num_samples=batch_size * (batches + 2), seed=0)
    rates = {}
    for count in workers:
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=count)
        iterator = iter(loader)
        batch = next(iterator)  # worker start-up is not throughput
        start = time.perf_counter()
        for _ in range(batches):
            batch = next(iterator)
        rates[count] = batches * batch_size / (time.perf_counter() - start)
    net = DiffusionPolicyNet(config)
    scheduler = make_scheduler(config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def step() -> None:
        images, goal = apply_augmentation(batch["images"], batch["goal"], batch["augment"])
        loss = diffusion_loss(net, scheduler, net.encode(images, goal), batch["action"], batch["valid"]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step_time = timed(step, 3)
    model_rate = batch_size / step_time
    print(f"train step ResNet-18 224x224 batch {batch_size}: {1e3 * step_time:.0f} ms = {model_rate:.1f} samples/s")
    for count, rate in rates.items():
        print(f"loader ({count} workers): {rate:7.1f} samples/s = {rate / model_rate:5.1f}x "
              "the model's consumption")


def augmentation_cost(repeats: int) -> None:
    """Batched augmentation vs torchvision's per-sample transforms, for 16 samples of 3 frames at 224x224."""
    from torchvision.transforms import v2

    images = torch.randint(0, 256, (16, 1, 2, 3, 224, 224), dtype=torch.uint8)
    goal = torch.randint(0, 256, (16, 1, 3, 224, 224), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    params = torch.stack([draw_params(AugmentConfig(), 1.0, generator) for _ in range(16)])
    batched = timed(lambda: apply_augmentation(images, goal, params), repeats)
    per_sample = v2.Compose([v2.RandomResizedCrop((224, 224), scale=(0.8, 1.0), antialias=True),
                             v2.ColorJitter(brightness=0.2, contrast=0.2, hue=0.05)])
    stacks = [torch.cat([images[i, 0], goal[i]]) for i in range(16)]
    baseline = timed(lambda: [per_sample(stack) for stack in stacks], repeats)
    print(f"augmentation of 16 samples: batched {1e3 * batched:.0f} ms vs torchvision per sample "
          f"{1e3 * baseline:.0f} ms ({baseline / batched:.1f}x faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to try")
    parser.add_argument("--quick", action="store_true", help="ResNet-18 only, fewer batches")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device cpu, threads {torch.get_num_threads()}")
    for encoder in ("resnet18",) if args.quick else ("resnet18", "resnet50"):
        inference(encoder, args.repeats)
    augmentation_cost(args.repeats)
    loader_vs_model(args.workers, 5 if args.quick else 20)


if __name__ == "__main__":
    main()
