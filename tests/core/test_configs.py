"""Every remix-weights preset composes into valid typed settings with the reference doc's numbers."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from remix.core.cli import settings_from_config

EXPECTED = {
    # preset: (eta, smoothing, normalization, bins, n_bins, encoder, batch)
    "rtx": (0.2, 0.05, "gaussian", "gaussian", 100, "resnet50", 512),
    "bridge": (1.0, 0.005, "bounds", "uniform", 128, "resnet34", 256),
    "robomimic": (0.2, 0.05, "gaussian", "gaussian", 48, "resnet18", 256),
}


@pytest.mark.parametrize("preset", ["tiny", "rtx", "bridge", "robomimic"])
def test_preset_composes(preset: str) -> None:
    with initialize_config_module(config_module="remix.configs", version_base=None):
        cfg = compose("weights", overrides=[f"remix={preset}", "out=/tmp/x"])
    s = settings_from_config(cfg)
    assert s.dro.scoring == "positive" and s.dro.absent == "zero" and s.dro.smoothing_target == "alpha0"
    assert s.dro.unlearnable == "zero" and s.reference.min_gain == 0.02
    if preset == "tiny":
        assert s.data.in_memory and not s.model.cameras and s.reference.stage.steps <= 5000
        return
    eta, smoothing, norm, bins, n_bins, encoder, batch = EXPECTED[preset]
    assert (s.dro.eta, s.dro.smoothing) == (eta, smoothing)
    assert (s.actions.normalization, s.actions.bins, s.actions.n_bins) == (norm, bins, n_bins)
    assert (s.model.encoder, s.reference.stage.batch_size) == (encoder, batch)
    assert not s.data.in_memory and s.model.cameras
    assert s.model.hidden_dims == (512, 512, 512) and s.reference.stage.optim.lr == 3e-4


def test_release_preset_is_the_authors_behaviour_on_the_demo() -> None:
    with initialize_config_module(config_module="remix.configs", version_base=None):
        release = settings_from_config(compose("weights", overrides=["remix=release", "out=/tmp/x"]))
        tiny = settings_from_config(compose("weights", overrides=["remix=tiny", "out=/tmp/x"]))
    assert (release.dro.scoring, release.dro.unlearnable, release.reference.min_gain) == (
        "positive",
        "score",
        None,
    )
    assert release.model == tiny.model and release.data == tiny.data  # the demo's data and model


# Every CLI whose settings are a typed dataclass: (config name, the dataclass, overrides that drop presets).
# Config groups (robot, operator, teleop) are plug-ins chosen by name; their own defaults are not compared here.
GROUPS = ("robot", "operator", "teleop")


def _schemas() -> list[tuple[str, str, list[str]]]:
    return [("weights", "remix.core.cli:WeightsCommand", ["~remix"]), ("train", "remix.policy.cli:TrainCommand", []),
            ("subset", "remix.core.cli:SubsetCommand", []), ("eval", "eval.command:EvalCommand", []),
            ("report", "eval.cli:ReportCommand", []), ("goal", "robots.cli:GoalCommand", []),
            ("robot_server", "robots.server:RobotServerCommand", []),
            ("policy_server", "remix.policy.server:PolicyServerCommand", []),
            ("collect", "teleop.cli:CollectCommand", []), ("shakedown", "robots.shakedown:ShakedownCommand", []),
            ("data", "remix.data.cli:DataCommand", []), ("select", "remix.select.config:SelectSettings", []),
            ("experiment", "eval.experiment:ExperimentCommand", [])]


@pytest.mark.parametrize("name,command,overrides", _schemas(), ids=[n for n, _, _ in _schemas()])
def test_cli_defaults_are_the_dataclass_defaults(name: str, command: str, overrides: list[str]) -> None:
    """The YAML holds no defaults of its own: the composed config is exactly the dataclass's defaults."""
    import importlib

    from omegaconf import OmegaConf

    from remix.common.config import defaults_of, register

    module, _, cls_name = command.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    register(f"{name}_schema", cls)  # as the console script does (remix-eval registers its schema lazily)
    with initialize_config_module(config_module="remix.configs", version_base=None):
        cfg = compose(name, overrides=overrides)
    composed = OmegaConf.to_container(cfg, resolve=False)
    expected = defaults_of(cls)
    assert {k: v for k, v in composed.items() if k not in GROUPS} == {k: v for k, v in expected.items() if k not in GROUPS}
    assert set(composed) >= set(expected)


def test_weights_defaults_are_the_documented_release_numbers() -> None:
    """The drifted defaults, resolved to the documented (release, RT-X) values in the library dataclasses."""
    from remix.core.train import ReferenceConfig, StageConfig
    from remix.policy.train import TrainConfig

    assert (StageConfig().steps, StageConfig().batch_size, ReferenceConfig().eval_every) == (500_000, 512, 50_000)
    assert TrainConfig().num_workers == 2
    with initialize_config_module(config_module="remix.configs", version_base=None):
        s = settings_from_config(compose("weights", overrides=["~remix", "out=/tmp/x"]))
    assert (s.reference.stage.steps, s.reference.stage.batch_size, s.reference.eval_every) == (500_000, 512, 50_000)


@pytest.mark.parametrize("config,override,message", [
    ("train", "train.steps=many", "train.steps=many is not valid: train.steps must be an integer"),
    ("eval", "trials=many", "trials=many is not valid: trials must be an integer"),
    ("policy_server", "port=abc", "port=abc is not valid: port must be an integer"),
    ("robot_server", "port=abc", "port=abc is not valid: port must be an integer"),
    ("weights", "reference.steps=1e", "reference.steps=1e is not valid: reference.steps must be an integer"),
    ("train", "data.stores=[a.zarr]", "'data.stores' is now called 'data.paths'"),
    ("train", "output_dir=runs/x", "'output_dir' is now called 'out'"),
    ("train", "model.use_proprio=true", "'model.use_proprio' is now called 'model.use_state'"),
    ("train", "data.domain_field=scene", "'data.domain_field' is now called 'data.domain_key'"),
    ("weights", "model.image_encoder=conv", "'model.image_encoder' is now called 'model.encoder'"),
    ("eval", "db=t.sqlite", "'db' is now called 'out'"),
    ("eval", "operator.kind=scripted", "'operator.kind' is now called 'operator'"),
    ("collect", "store=demos/x.zarr", "'store' is now called 'out'"),
    ("collect", "teleop.kind=keyboard", "'teleop.kind' is now called 'teleop'"),
    ("subset", "paths=[a.zarr]", "'paths' is now called 'data.paths'"),
    ("experiment", "data_paths=[a.zarr]", "'data_paths' is now called 'data.paths'"),
])
def test_bad_values_and_old_names_are_one_line_errors(config: str, override: str, message: str) -> None:
    import eval.experiment  # noqa: F401
    import remix.core.cli  # noqa: F401  (registers the schemas, as each console script does)
    import remix.policy.cli  # noqa: F401
    import remix.policy.server  # noqa: F401
    import robots.server  # noqa: F401
    import teleop.cli  # noqa: F401
    from eval.command import EvalCommand
    from remix.common.cli import check_overrides
    from remix.common.config import register

    register("eval_schema", EvalCommand)
    problem = check_overrides(config, [override])
    assert problem is not None and "\n" not in problem
    assert problem.startswith(message), problem


def test_remix_report_keeps_its_db_input() -> None:
    """`db` is remix-report's input (the trial log): the redirect applies only where the old key is gone."""
    import eval.cli  # noqa: F401
    from remix.common.cli import check_overrides

    assert check_overrides("report", ["db=evals/trials.sqlite"]) is None


def test_remix_data_import_keys_are_the_typed_import_options_with_no_defaults_of_their_own() -> None:
    """remix-data's import keys mirror ImportOptions one to one and hold only None ("not given"), so each import
    default lives once, in ImportOptions (a preset, then the CLI value, go on top)."""
    import dataclasses

    from remix.common.config import defaults_of
    from remix.data.cli import DataCommand
    from remix.data.importers.options import FieldRule, Filters, ImportOptions

    cli = defaults_of(DataCommand)
    options = [f.name for f in dataclasses.fields(ImportOptions)]
    assert set(options) <= set(cli), sorted(set(options) - set(cli))
    nested = {"domain": [f.name.rstrip("_") for f in dataclasses.fields(FieldRule)],
              "filters": [f.name for f in dataclasses.fields(Filters)]}
    for name in options:
        if name in nested:
            assert cli[name] == dict.fromkeys(nested[name]), name
        else:
            assert cli[name] is None, f"DataCommand.{name} has a default of its own: {cli[name]!r}"
