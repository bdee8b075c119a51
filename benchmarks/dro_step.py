"""Time per training step: plain BC vs Group DRO with a reference forward vs DRO with cached reference NLL.

Same model, same batches, one process, interleaved rounds (so load on a shared machine hits all three
alike); prints the median time per step and the ratios to BC. Goal: DRO with the cache <= 1.10x BC.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dro_step.py                     # state MLP (release trunk)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dro_step.py --encoder conv --image-size 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from remix.core.distributed import DistInfo
from remix.core.dro import DROConfig, GroupDRO
from remix.core.model import DiscretePolicy, OptimConfig, PolicyConfig, make_optimizer, sequence_nll
from remix.core.train import DROTrainer, StageConfig, optimizer_step


def make_batches(args: argparse.Namespace, count: int, num_samples: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        b = {
            "bins": torch.randint(0, args.bins, (args.batch, args.horizon, 7), generator=g),
            "valid": torch.ones(args.batch, args.horizon, dtype=torch.bool),
            "domain": torch.randint(0, args.domains, (args.batch,), generator=g),
            "index": torch.randint(0, num_samples, (args.batch,), generator=g),
            "state": torch.randn(args.batch, 2, 7, generator=g),
            "goal/state": torch.randn(args.batch, 7, generator=g),
        }
        if args.encoder != "none":
            size = args.image_size
            b["images/cam0"] = torch.randint(
                0, 255, (args.batch, 2, size, size, 3), dtype=torch.uint8, generator=g
            )
            b["goal/cam0"] = torch.randint(
                0, 255, (args.batch, size, size, 3), dtype=torch.uint8, generator=g
            )
        batches.append(b)
    return batches


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--encoder", default="none", help="none (state MLP) | conv | resnet18 | resnet34 | resnet50"
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--bins", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--domains", type=int, default=11)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = PolicyConfig(
        action_dim=7,
        n_bins=args.bins,
        horizon=args.horizon,
        n_obs=2,
        state_dim=7,
        cameras=("cam0",) if args.encoder != "none" else (),
        encoder=args.encoder if args.encoder != "none" else "tiny",
        hidden_dims=tuple(args.hidden),
    )
    num_samples = 100_000
    batches = make_batches(args, args.steps, num_samples)
    stage = StageConfig(steps=10**6, batch_size=args.batch, optim=OptimConfig(warmup_steps=10))
    cpu = DistInfo(0, 1, torch.device("cpu"))
    torch.manual_seed(0)
    reference = DiscretePolicy(config).eval()
    cache = torch.rand(num_samples) * 10
    alpha0 = [1.0 / args.domains] * args.domains

    bc_model = DiscretePolicy(config)
    bc_opt, bc_sched = make_optimizer(bc_model, stage.optim, stage.steps)

    def bc_step(batch: dict[str, torch.Tensor]) -> None:
        loss = sequence_nll(bc_model(batch), batch).mean()
        optimizer_step(bc_opt, bc_sched, bc_model, loss, stage.optim.grad_clip)

    names = [f"d{i}" for i in range(args.domains)]
    dro_forward = DROTrainer(
        DiscretePolicy(config), GroupDRO(alpha0, DROConfig()), names, stage, cpu, reference=reference
    )
    dro_cached = DROTrainer(
        DiscretePolicy(config), GroupDRO(alpha0, DROConfig()), names, stage, cpu, cache=cache
    )
    methods = {
        "BC": bc_step,
        "DRO + reference forward": dro_forward.step,
        "DRO + cached reference NLL": dro_cached.step,
    }
    for fn in methods.values():  # warm-up
        for batch in batches[:3]:
            fn(batch)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, fn in methods.items():
            start = time.perf_counter()
            for batch in batches:
                fn(batch)
            times[name].append((time.perf_counter() - start) / len(batches))
    encoder = "state MLP" if args.encoder == "none" else f"{args.encoder} {args.image_size}px"
    print(
        f"model: {encoder}, trunk {args.hidden}, {args.bins} bins, batch {args.batch}, {args.domains} domains; "
        f"torch threads {torch.get_num_threads()}; median of {args.rounds} rounds x {args.steps} steps"
    )
    bc = statistics.median(times["BC"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28s} {1000 * median:8.2f} ms/step   {median / bc:5.2f}x BC")


if __name__ == "__main__":
    main()
