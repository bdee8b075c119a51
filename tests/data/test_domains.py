"""One domain discovery and one validation split for remix-weights, remix-subset, remix-select and remix-train."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from rich.console import Console

from remix.common.config import build
from remix.common.errors import ConfigError, RemixError
from remix.core.cli import settings_from_config
from remix.core.distributed import DistInfo
from remix.core.run import data_stage
from remix.data.domains import discover_domains, split_domains
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.policy.cli import TrainCommand
from remix.policy.data import discover_domains as train_domains


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("domains")
    make_synthetic_store(root / "scenes.zarr", SyntheticDomain("scenes", num_episodes=9, episode_length=4,
                                                               image_size=0, scenes=("sink", "stove", "table")))
    make_synthetic_store(root / "plain.zarr", SyntheticDomain("plain", num_episodes=5, episode_length=3, image_size=0))
    return [str(root / "scenes.zarr"), str(root / "plain.zarr")]


def _steps(store_path, episodes) -> set[int]:
    from remix.data import EpisodeStore

    store = EpisodeStore.open(store_path)
    return {int(s) for e in episodes for s in range(*store.episode_bounds(int(e)))}


def test_remix_weights_and_remix_train_see_the_same_domains_and_split(stores, tmp_path) -> None:
    data = [f"data.paths=[{','.join(stores)}]", "data.domain_key=scene", "data.val_fraction=0.34"]
    with initialize_config_module(config_module="remix.configs", version_base=None):
        weights = settings_from_config(compose("weights", overrides=[*data, f"out={tmp_path / 'w'}", "seed=3",
                                                                     "model.cameras=[]"]))
        train = build(TrainCommand, compose("train", overrides=[*data, f"out={tmp_path / 't'}", "train.seed=3"]))
    (tmp_path / "w").mkdir()
    run = data_stage(weights, DistInfo(0, 1, torch.device("cpu")), Console(quiet=True))
    policy = train_domains(train.data, train.train.seed)

    assert run.data.names == [d.name for d in policy] == ["sink", "stove", "table", "plain"]
    for k, domain in enumerate(policy):
        assert set(run.data.train.samplers[k].indices.tolist()) == _steps(domain.store, domain.train_episodes)
        assert set(run.data.val.samplers[k].indices.tolist()) == _steps(domain.store, domain.val_episodes)
        assert len(domain.val_episodes) >= 1 and len(domain.train_episodes) >= 1  # split per domain


def test_split_is_per_domain_and_keeps_training_episodes(stores) -> None:
    domains = discover_domains(stores[:1], "scene")
    splits = split_domains(domains, 0.5, seed=0)
    for domain, (train, val) in zip(domains, splits):
        assert sorted([*train, *val]) == list(domain.episodes) and len(train) >= 1 and len(val) >= 1
    assert split_domains(domains, 0.5, seed=0)[0][1].tolist() == splits[0][1].tolist()  # seeded
    single = discover_domains(stores[:1], "scene")[:1]
    one = [type(single[0])(single[0].name, single[0].path, single[0].episodes[:1], 4)]
    with pytest.raises(ConfigError, match="no training episodes after the validation split"):
        split_domains(one, 0.9)


def test_discovery_errors_are_one_line(stores, tmp_path) -> None:
    with pytest.raises(RemixError, match="at least 2 domains"):
        discover_domains(stores[1:], min_domains=2)
    with pytest.raises(ConfigError, match="both named 'plain'"):
        discover_domains([stores[1]], cotrain=[stores[1]])
    with pytest.raises(ConfigError, match="no per-episode field 'kitchen'"):
        discover_domains(stores, "kitchen")
    cotrained = discover_domains(stores[:1], "scene", cotrain=stores[1:])
    assert [(d.name, d.cotrain) for d in cotrained][-1] == ("plain", True)  # co-training stores are never split
    assert np.all([len(d.episodes) == 3 for d in cotrained[:3]])
