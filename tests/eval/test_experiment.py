"""remix-experiment: the arms' weights, the table, and the CI preset end to end (then resumed: nothing reruns)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.experiment import Cell, ExperimentSettings, arm_weights, table, to_markdown
from remix.common.errors import ConfigError

BIN = Path(sys.executable).parent


def settings(tmp_path: Path, **overrides) -> ExperimentSettings:
    values = dict(out=tmp_path, task="lift_red", operators=("better", "better", "worse", "junk"), demos_per_operator=2,
                  oracle=("better",), fractions=(0.25, 0.5), arms=("remix", "size", "uniform", "oracle"),
                  seeds=(0, 1), trials=4, eval_seed=0)
    values.update(overrides)
    return ExperimentSettings(**values)


def test_operators_become_numbered_domains_and_the_oracle_keeps_the_better_ones(tmp_path) -> None:
    s = settings(tmp_path)
    assert s.operator_domains == {"better_1": "better", "better_2": "better", "worse_1": "worse", "junk_1": "junk"}
    assert s.oracle_domains == ["better_1", "better_2"]
    with pytest.raises(ConfigError, match="unknown arm"):
        settings(tmp_path, arms=("remix", "best"))
    with pytest.raises(ConfigError, match="oracle"):
        settings(tmp_path, oracle=("expert",))


def test_each_arm_water_fills_by_its_own_weights() -> None:
    learned = {"weights": {"better_1": 0.6, "worse_1": 0.3, "junk_1": 0.1}}
    sizes = {"better_1": 100.0, "worse_1": 300.0, "junk_1": 600.0}
    assert arm_weights("remix", learned, sizes, ["better_1"]) == pytest.approx(learned["weights"])
    assert arm_weights("size", learned, sizes, ["better_1"]) == pytest.approx({"better_1": 0.1, "worse_1": 0.3,
                                                                             "junk_1": 0.6})
    assert arm_weights("uniform", learned, sizes, ["better_1"]) == pytest.approx(dict.fromkeys(sizes, 1 / 3))
    assert arm_weights("oracle", learned, sizes, ["better_1"]) == {"better_1": 1.0, "worse_1": 0.0, "junk_1": 0.0}


def test_the_table_is_mean_and_standard_error_over_seeds(tmp_path) -> None:
    s = settings(tmp_path, fractions=(0.25,), arms=("remix", "size"))
    for arm, rates in (("remix", (0.5, 0.7)), ("size", (0.25,))):
        for seed, rate in zip(s.seeds, rates):
            folder = s.job_dir(0.25, arm, seed)
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps({"success_rate": rate}))
    cells = table(s)
    assert [(c.arm, c.rates) for c in cells] == [("remix", (0.5, 0.7)), ("size", (0.25,))]
    assert cells[0].mean == pytest.approx(0.6) and cells[0].sem == pytest.approx(0.1)
    assert math.isnan(cells[1].sem)  # one seed: no error bar, not a fake zero
    text = to_markdown(cells, s)
    assert "| remix | 60% ± 10 |" in text and "| size | 25% |" in text
    assert Cell(0.5, "x", (1.0, 0.0, 0.5)).sem == pytest.approx(math.sqrt(0.25 / 3))


@pytest.mark.slow
def test_ci_preset_runs_end_to_end_and_a_rerun_skips_every_stage(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    args = [str(BIN / "remix-experiment"), "experiment=ci", f"out={tmp_path / 'run'}", "arms=[remix,oracle]",
            "trials=1", "demos_per_operator=2"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "| remix |" in first.stdout and "| oracle |" in first.stdout
    results = tmp_path / "run" / "results"
    assert {p.name for p in results.iterdir()} == {"results.csv", "table.md", "success.png"}
    for arm in ("remix", "oracle"):
        job = json.loads((tmp_path / "run" / "jobs" / "f0.5" / arm / "seed0" / "result.json").read_text())
        assert job["trials"] == 1 and job["successes"] in (0, 1)
    oracle = json.loads((tmp_path / "run" / "subsets" / "f0.5" / "oracle" / "subset.json").read_text())
    assert oracle["domains"]["worse_1"]["kept_steps"] == 0 and oracle["domains"]["better_1"]["kept_steps"] > 0
    again = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "jobs: all done" in again.stderr and "weights: done" in again.stderr
    assert "data:" not in again.stderr  # every operator's store was already full
