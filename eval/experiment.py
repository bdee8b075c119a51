"""`remix-experiment`: the paper's data-curation experiment (Tables 3 and 4) in one command.

    remix-experiment out=runs/experiment                    # the full run (configs/experiment.yaml)
    remix-experiment experiment=ci out=/tmp/exp             # the small CI preset, a few minutes on a CPU
    remix-experiment hydra/launcher=submitit_slurm ...      # the same jobs on a SLURM cluster

Stages, each skipped on a rerun once its output exists (so an interrupted run resumes where it stopped):

1. data: graded sim operators (`teleop/operator_profiles.py`) collect demos of `task`, one store and one
   Re-Mix domain per operator (through `remix-collect`'s own code); or `data.paths` names existing stores.
2. weights: `remix-weights` on those stores.
3. subsets: for every fraction and arm, `remix-subset` water-fills the fraction by the arm's weights:
   remix (the learned weights), size (proportional to size: a uniform random subset), uniform (equal per
   domain) and oracle (only the better operators' domains).
4. jobs: for every fraction x arm x seed, one independent job trains a policy on its subset (`remix-train`)
   and evaluates it (`remix-eval`) on the same fixed scene seeds as every other job. The jobs are a hydra
   multirun of this command (`stage=job`), so hydra's launcher runs them: joblib locally (n_jobs), submitit on
   SLURM, Ray where a lab has one; no scheduler of our own.
5. table: success mean +- standard error over seeds per fraction and arm (Markdown, CSV) and the bar chart.

Collection and evaluation use remix-collect's and remix-eval's sessions (`DemoCollector`, `EvalSession`) on
the `robot` config; weights and training run remix-weights' and remix-train's own entry points on configs
composed from their YAML plus the override lists `weights` and `train`, so the tools' presets apply as-is.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from remix.common.atomic import write_json_atomic
from remix.common.cli import hydra_main
from remix.common.config import build, register
from remix.common.errors import ConfigError, RemixError

ARMS = ("remix", "size", "uniform", "oracle")
RESULT = "result.json"


@dataclass(frozen=True)
class ExperimentData:
    paths: tuple[str, ...] = ()  # existing stores (one domain each) instead of collecting graded-operator demos


@dataclass(frozen=True)
class ExperimentSettings:
    """What the experiment runs; the defaults are the full run, sized for a 2-core CPU (about 30 min)."""

    out: Path = Path("runs/experiment")  # everything goes here: data/, weights/, subsets/, jobs/, results/
    task: str = "lift_red"  # the sim task every operator demonstrates and every policy is evaluated on
    # one operator profile per operator (teleop/operator_profiles.py), as robomimic MH's 6 operators; operator k
    # of profile p records domain p_k (better_1, ...)
    operators: tuple[str, ...] = ("better", "better", "okay", "okay", "worse", "worse")
    demos_per_operator: int = 20  # kept demos per operator (robomimic MH: 50 per operator)
    oracle: tuple[str, ...] = ("better",)  # the oracle arm keeps these profiles' operators (with data.paths: domains)
    fractions: tuple[float, ...] = (0.25, 0.5)  # shares of the data kept (paper Tables 3/4)
    arms: tuple[str, ...] = ARMS  # remix weights | proportional to size | equal per domain | better only
    seeds: tuple[int, ...] = (0, 1)  # training seeds per arm and fraction (the table's mean +- s.e. is over these)
    trials: int = 10  # evaluation scenes per policy; the same scene seeds for every arm
    eval_seed: int = 0  # picks those scenes (remix-eval's session seed) and the subsets' episodes
    robot: Any = field(default_factory=dict)  # the sim robot's config (the robot group + robot.* overrides)
    max_steps: int = 120  # step limit of a demo attempt and of an evaluation trial
    time_limit_s: float = 12.0  # per evaluation trial, in simulated seconds (120 steps at the 10 Hz of configs/experiment.yaml)
    policy_options: Any = field(default_factory=dict)  # load_policy options for the checkpoints (e.g. exec_horizon)
    data: ExperimentData = field(default_factory=ExperimentData)
    # overrides handed to remix-weights' and remix-train's own configs (see their --help). Policies use the
    # measured sim design (remix-train recipe=cpu) at half its steps; on GPUs use recipe=paper or raise train.steps
    weights: tuple[str, ...] = ("model.cameras=[cam0]", "model.encoder=tiny", "reference.steps=400",
                                "reference.eval_every=50", "reference.eval_samples=128", "batch_size=64", "log_every=100")
    train: tuple[str, ...] = ("recipe=cpu", "train.steps=3000", "train.val_every=3000", "train.save_every=3000")
    jobs_args: tuple[str, ...] = ()  # extra overrides for the job multirun, e.g. [hydra.launcher.n_jobs=4]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.arms) - set(ARMS))
        if unknown or not self.arms:
            raise ConfigError(f"unknown arm(s) {unknown}; arms is a list of {'|'.join(ARMS)}")
        if not self.fractions or not all(0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions must be in (0, 1], got {list(self.fractions)}")
        if not self.seeds:
            raise ConfigError("seeds is empty; give at least one training seed, e.g. seeds=[0,1,2]")
        if self.trials < 1 or self.demos_per_operator < 1:
            raise ConfigError("trials and demos_per_operator must be >= 1")
        if "oracle" in self.arms and not self.oracle_domains:
            raise ConfigError(f"oracle={list(self.oracle)} names none of the operators' profiles {sorted(set(self.operators))} "
                              f"(with data.paths: none of the domains {self.domains})")

    @property
    def operator_domains(self) -> dict[str, str]:
        """Domain name -> profile: the k-th operator with profile p is domain p_k (robomimic MH: better_1, ...)."""
        seen: dict[str, int] = {}
        named = {}
        for profile in self.operators:
            seen[profile] = seen.get(profile, 0) + 1
            named[f"{profile}_{seen[profile]}"] = profile
        return named

    @property
    def oracle_domains(self) -> list[str]:
        if self.data.paths:
            return [d for d in self.domains if d in self.oracle]
        return [d for d, profile in self.operator_domains.items() if profile in self.oracle]

    @property
    def domains(self) -> list[str]:
        return [Path(p).stem for p in self.data.paths] if self.data.paths else list(self.operator_domains)

    def store(self, domain: str) -> Path:
        return self.out / "data" / f"{domain}.zarr"

    def subset_dir(self, fraction: float, arm: str) -> Path:
        return self.out / "subsets" / f"f{fraction:g}" / arm

    def job_dir(self, fraction: float, arm: str, seed: int) -> Path:
        return self.out / "jobs" / f"f{fraction:g}" / arm / f"seed{seed}"


@dataclass(frozen=True)
class JobCell:
    fraction: float | None = None
    arm: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class ExperimentCommand(ExperimentSettings):
    """remix-experiment's settings: ExperimentSettings plus which stage this process runs."""

    stage: str = "all"  # all (the whole experiment) | job (one job of the multirun; set by remix-experiment)
    job: JobCell = field(default_factory=JobCell)  # the job's cell (stage=job only)


register("experiment_schema", ExperimentCommand)


def settings_from(cfg: DictConfig) -> ExperimentSettings:
    """The typed settings (paths made absolute: jobs run in other working directories)."""
    if not cfg.get("out"):
        raise ConfigError("out= is empty; give a run directory, e.g. out=runs/experiment")
    command = build(ExperimentCommand, cfg)
    values = {f.name: getattr(command, f.name) for f in fields(ExperimentSettings)}
    values["out"] = Path(command.out).expanduser().resolve()
    values["data"] = ExperimentData(tuple(str(Path(p).expanduser().resolve()) for p in command.data.paths))
    return ExperimentSettings(**values)


# ---------------------------------------------------------------------------------------------- tools
def _compose(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """A tool's config as its console script would compose it (we run inside hydra: the search path is set)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from remix.common.cli import CONFIG_MODULE

    try:
        if GlobalHydra.instance().is_initialized():
            cfg = compose(config_name, overrides=list(overrides))
        else:  # called from Python, not from the console script
            from hydra import initialize_config_module

            with initialize_config_module(CONFIG_MODULE, version_base=None):
                cfg = compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        first = str(error).strip().splitlines()[0]
        raise ConfigError(f"the {config_name} overrides {list(overrides)} do not compose: {first}") from None
    OmegaConf.set_struct(cfg, True)
    return cfg


def _register_schemas() -> None:
    """(Re-)register the tools' structured configs. A launcher worker process restores hydra's ConfigStore from
    the parent's state before each job, dropping what an earlier job's imports registered there."""
    from remix.core.cli import WeightsCommand
    from remix.policy.cli import TrainCommand

    register("weights_schema", WeightsCommand)
    register("train_schema", TrainCommand)


def _run_tool(entry: Any, config_name: str, overrides: Sequence[str]) -> None:
    """Run a console script's body (the function under its hydra decorator) on a composed config."""
    _register_schemas()
    result = getattr(entry, "__wrapped__", entry)(_compose(config_name, overrides))
    if isinstance(result, int) and result != 0:
        raise RemixError(f"{config_name} exited with status {result}")


def _list(values: Sequence[object]) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


# ---------------------------------------------------------------------------------------------- stages
def collect_data(s: ExperimentSettings) -> list[Path]:
    """Stage 1: one store per graded operator, through remix-collect's session (a rerun continues each count)."""
    if s.data.paths:
        return [Path(p) for p in s.data.paths]
    from remix.common.operator_input import ScriptedInput
    from robots.robot import make_robot
    from teleop.collect import CollectSettings, DemoCollector, count_kept, open_demo_store
    from teleop.factory import make_sim_expert

    paths = []
    with make_robot(s.robot) as robot:
        for index, (domain, profile) in enumerate(s.operator_domains.items()):
            store_path = s.store(domain)
            paths.append(store_path)
            store = open_demo_store(store_path, robot)
            if count_kept(store, s.task) >= s.demos_per_operator:
                store.close()
                continue
            _say(f"data: {s.demos_per_operator} demos of {domain} ({profile}) -> {store_path}")
            setup = make_sim_expert({"profile": profile, "seed": index}, robot)
            settings = CollectSettings(task=s.task, num_demos=s.demos_per_operator, operator=profile, domain=domain,
                                       max_steps=s.max_steps, seed=100_000 * (index + 1), unattended=True)
            try:
                with setup.device:
                    DemoCollector(robot, setup.device, store, ScriptedInput(), settings).run()
            finally:
                setup.close()
    return paths


def learn_weights(s: ExperimentSettings, stores: Sequence[Path]) -> Path:
    """Stage 2: Re-Mix weights over the domains."""
    out = s.out / "weights"
    if (out / "weights.json").exists():
        _say(f"weights: done ({out / 'weights.json'})")
        return out / "weights.json"
    from remix.core.cli import weights_main

    _run_tool(weights_main, "weights", [*s.weights, f"data.paths={_list(stores)}", f"out={out}", "overwrite=true"])
    return out / "weights.json"


def arm_weights(arm: str, learned: dict[str, Any], sizes: dict[str, float], oracle: Sequence[str]) -> dict[str, float]:
    """The domain weights an arm water-fills its subset by (and trains with)."""
    names = list(learned["weights"])
    if arm == "remix":
        raw = {n: float(learned["weights"][n]) for n in names}
    elif arm == "size":
        raw = {n: float(sizes[n]) for n in names}
    elif arm == "uniform":
        raw = dict.fromkeys(names, 1.0)
    elif arm == "oracle":
        raw = {n: 1.0 if n in oracle else 0.0 for n in names}
    else:
        raise ConfigError(f"unknown arm {arm!r}; use one of {ARMS}")
    total = sum(raw.values())
    return {n: v / total for n, v in raw.items()}


def make_subsets(s: ExperimentSettings, weights_file: Path) -> None:
    """Stage 3: the water-filled subset of every (fraction, arm)."""
    from remix.core.subset import run_subset
    from remix.data import EpisodeStore

    learned = json.loads(weights_file.read_text())
    sizes = {Path(src["path"]).stem: float(EpisodeStore.open(src["path"]).num_steps) for src in learned["sources"]}
    sizes = {n: sizes.get(n, 0.0) for n in learned["weights"]}
    for arm in s.arms:
        arm_file = s.out / "subsets" / f"{arm}-weights.json"
        arm_file.parent.mkdir(parents=True, exist_ok=True)
        weights = arm_weights(arm, learned, sizes, s.oracle_domains)
        write_json_atomic(arm_file, {**learned, "weights": weights, "arm": arm})
        for fraction in s.fractions:
            out = s.subset_dir(fraction, arm)
            if (out / "subset.json").exists():
                continue
            run_subset(weights=arm_file, fraction=fraction, out=out, seed=s.eval_seed, overwrite=True)


def run_jobs(s: ExperimentSettings, overrides: Sequence[str], hydra_overrides: Sequence[str]) -> None:
    """Stage 4: every unfinished (fraction, arm, seed) job, as a hydra multirun of `stage=job`."""
    todo = [(f, a, k) for f in s.fractions for a in s.arms for k in s.seeds if not (s.job_dir(f, a, k) / RESULT).exists()]
    if not todo:
        _say("jobs: all done")
        return
    _say(f"jobs: {len(todo)} to run through hydra's launcher")
    mine = [o for o in overrides if o.split("=")[0].lstrip("+~") not in ("stage", "job.fraction", "job.arm", "job.seed")]
    sweep = [f"job.fraction={','.join(f'{f:g}' for f in s.fractions)}", f"job.arm={','.join(s.arms)}",
             f"job.seed={','.join(str(k) for k in s.seeds)}"]
    # imported by name (not run as __main__) so the launcher pickles the job function by reference: classes
    # pickled by value lose their type hints in the worker, and the typed settings would not build
    command = [sys.executable, "-c", "from eval.experiment import main; main()", "--multirun", *mine, *hydra_overrides, *s.jobs_args,
               "stage=job", *sweep, f"out={s.out}"]
    _say("$ " + shlex.join(command))
    done = subprocess.run(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    failed = [t for t in todo if not (s.job_dir(*t) / RESULT).exists()]
    if done.returncode != 0 or failed:
        raise RemixError(f"{len(failed)} job(s) did not finish (launcher exit {done.returncode}), e.g. "
                         f"fraction={failed[0][0] if failed else '?'} arm={failed[0][1] if failed else '?'}; "
                         "rerun the same command to resume")


def run_job(s: ExperimentSettings, fraction: float, arm: str, seed: int) -> dict[str, Any]:
    """One job: train on the (fraction, arm) subset with `seed`, evaluate on the fixed scenes, write result.json."""
    from remix.policy.cli import train_main

    folder = s.job_dir(fraction, arm, seed)
    if (folder / RESULT).exists():
        return json.loads((folder / RESULT).read_text())
    folder.mkdir(parents=True, exist_ok=True)
    subset = s.subset_dir(fraction, arm)
    final = folder / "checkpoint.txt"
    if not final.exists():
        policy_dir = folder / "policy"
        resume = "resume=true" if (policy_dir / "checkpoints").exists() else "overwrite=true"
        _run_tool(train_main, "train", [*s.train, f"out={policy_dir}", *_subset_data(subset), f"train.seed={seed}",
                                        resume, "train.progress=false"])
        checkpoints = sorted((policy_dir / "checkpoints").glob("step_*"))
        if not checkpoints:
            raise RemixError(f"training in {policy_dir} wrote no checkpoint")
        final.write_text(str(checkpoints[-1]))
    checkpoint = final.read_text().strip()
    successes, trials = evaluate(s, arm, checkpoint, folder)
    result = {"fraction": fraction, "arm": arm, "seed": seed, "successes": successes, "trials": trials,
              "success_rate": successes / trials, "checkpoint": checkpoint, "subset": str(subset)}
    write_json_atomic(folder / RESULT, result)
    return result


def _subset_data(subset: Path) -> list[str]:
    """Training data overrides for a subset: its non-empty stores, sampled by the arm's weights (a domain whose
    weight is 0, e.g. a worse operator for the oracle, kept no episodes and is left out)."""
    from remix.data import EpisodeStore

    info = json.loads((subset / "subset.json").read_text())
    stores = [Path(p) for p in info["stores"].values() if EpisodeStore.open(p).num_episodes > 0]
    weights = {p.stem: float(info["weights"][p.stem]) for p in stores}
    mapping = "{" + ",".join(f"{name}:{w!r}" for name, w in weights.items()) + "}"
    return [f"data.paths={_list(stores)}", f"data.weights={mapping}"]


def evaluate(s: ExperimentSettings, arm: str, checkpoint: str, folder: Path) -> tuple[int, int]:
    """remix-eval's session for one checkpoint on the experiment's fixed scenes (session seed `eval_seed`, so
    every arm meets the same scenes and each its own goal); resumable like any session."""
    from eval.rollout import RolloutSettings
    from eval.session import EvalSession, SessionSettings
    from eval.trial_log import TrialLog
    from remix.common.operator_input import ScriptedInput
    from remix.policy import load_policy
    from robots.robot import make_robot

    settings = SessionSettings(name="experiment", tasks=(s.task,), trials=s.trials, seed=s.eval_seed,
                               record_video=False, ask_notes=False,
                               rollout=RolloutSettings(time_limit_s=s.time_limit_s, max_steps=s.max_steps))
    with TrialLog.create(folder / "trials.sqlite") as log, make_robot(s.robot) as robot:
        policy = load_policy(checkpoint, robot=robot, **s.policy_options)
        try:
            EvalSession(log, robot, {arm: policy}, {arm: checkpoint}, ScriptedInput(), settings, progress=False).run()
        finally:
            policy.close()
        rows = [r for r in log.trials(sessions=["experiment"]) if r.outcome in ("success", "failure")]
    return sum(r.outcome == "success" for r in rows), len(rows)


# ---------------------------------------------------------------------------------------------- table
@dataclass(frozen=True)
class Cell:
    fraction: float
    arm: str
    rates: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.rates) / len(self.rates)

    @property
    def sem(self) -> float:
        n = len(self.rates)
        if n < 2:
            return float("nan")
        var = sum((r - self.mean) ** 2 for r in self.rates) / (n - 1)
        return math.sqrt(var / n)


def table(s: ExperimentSettings) -> list[Cell]:
    cells = []
    for fraction in s.fractions:
        for arm in s.arms:
            rates = tuple(json.loads((s.job_dir(fraction, arm, k) / RESULT).read_text())["success_rate"]
                          for k in s.seeds if (s.job_dir(fraction, arm, k) / RESULT).exists())
            if rates:
                cells.append(Cell(fraction, arm, rates))
    return cells


def to_markdown(cells: Sequence[Cell], s: ExperimentSettings) -> str:
    fractions = sorted({c.fraction for c in cells})
    by = {(c.fraction, c.arm): c for c in cells}
    head = "| arm | " + " | ".join(f"{100 * f:g}% of the data" for f in fractions) + " |"
    lines = [head, "|" + "---|" * (len(fractions) + 1)]
    for arm in s.arms:
        row = []
        for f in fractions:
            c = by.get((f, arm))
            row.append("-" if c is None else f"{100 * c.mean:.0f}% ± {100 * c.sem:.0f}" if not math.isnan(c.sem)
                       else f"{100 * c.mean:.0f}%")
        lines.append(f"| {arm} | " + " | ".join(row) + " |")
    lines.append(f"\nsuccess on {s.trials} fixed scenes of {s.task}, mean ± s.e. over {len(s.seeds)} training seed(s)")
    return "\n".join(lines)


def write_table(s: ExperimentSettings, cells: Sequence[Cell]) -> list[Path]:
    out = s.out / "results"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fraction", "arm", "seeds", "mean", "sem", "rates"])
        for c in cells:
            writer.writerow([c.fraction, c.arm, len(c.rates), f"{c.mean:.4f}", f"{c.sem:.4f}",
                             " ".join(f"{r:.3f}" for r in c.rates)])
    (out / "table.md").write_text(to_markdown(cells, s) + "\n")
    plot_bars(cells, s, out / "success.png")
    return [out / "results.csv", out / "table.md", out / "success.png"]


def plot_bars(cells: Sequence[Cell], s: ExperimentSettings, path: Path) -> None:
    """The paper's bar chart: success per arm, grouped by fraction, with s.e. error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted({c.fraction for c in cells})
    by = {(c.fraction, c.arm): c for c in cells}
    width = 0.8 / max(1, len(s.arms))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(fractions), 3.2))
    for i, arm in enumerate(s.arms):
        xs = [j + (i - (len(s.arms) - 1) / 2) * width for j in range(len(fractions))]
        means = [100 * by[(f, arm)].mean if (f, arm) in by else 0.0 for f in fractions]
        errs = [0.0 if (f, arm) not in by or math.isnan(by[(f, arm)].sem) else 100 * by[(f, arm)].sem for f in fractions]
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=arm)
    ax.set_xticks(range(len(fractions)), [f"{100 * f:g}%" for f in fractions])
    ax.set_xlabel("share of the data kept")
    ax.set_ylabel(f"success on {s.task} (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- entry
def _say(text: str) -> None:
    print(f"[remix-experiment] {text}", file=sys.stderr, flush=True)


def run_experiment(cfg: DictConfig) -> int:
    """Run (or resume) every stage; `stage=job` is one job of the multirun."""
    from hydra.core.hydra_config import HydraConfig

    s = settings_from(cfg)
    if cfg.stage == "job":
        job = cfg.job
        if job.fraction is None or job.arm is None or job.seed is None:
            raise ConfigError("stage=job needs job.fraction, job.arm and job.seed (remix-experiment sets them)")
        result = run_job(s, float(job.fraction), str(job.arm), int(job.seed))
        _say(f"job f={job.fraction} {job.arm} seed {job.seed}: {result['successes']}/{result['trials']}")
        return 0
    if cfg.stage != "all":
        raise ConfigError(f"stage must be all (the whole experiment) or job (one job), got {cfg.stage!r}")
    s.out.mkdir(parents=True, exist_ok=True)
    stores = collect_data(s)
    weights_file = learn_weights(s, stores)
    make_subsets(s, weights_file)
    hydra = HydraConfig.get()
    launcher = [o for o in hydra.overrides.hydra if o.startswith(("hydra/launcher", "hydra.launcher"))]
    run_jobs(s, list(hydra.overrides.task), launcher)
    cells = table(s)
    written = write_table(s, cells)
    print(to_markdown(cells, s))
    _say(f"wrote {', '.join(str(p) for p in written)}")
    return 0


USAGE = """remix-experiment: graded-operator sim data -> Re-Mix weights -> water-filled subsets -> policies per arm
-> remix-eval on fixed scenes -> success table (mean ± s.e. over seeds) and bar chart. Reruns resume.

Usage:
  remix-experiment [out=runs/experiment] [experiment=ci] [fractions=[0.25,0.5]] [seeds=[0,1,2]] [trials=50]
                   [hydra.launcher.n_jobs=2] [hydra/launcher=submitit_slurm]
"""

main = hydra_main("experiment", usage=USAGE)(run_experiment)

if __name__ == "__main__":
    main()
