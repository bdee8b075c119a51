"""The training mixture: domains, weights, co-training share, normalization and augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from remix.common.errors import ConfigError, RemixError
from remix.data import EpisodeStore
from remix.data.mixture import WeightedDomainSampler
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.policy.config import ModelConfig
from remix.policy.data import (
    AugmentConfig,
    MixtureConfig,
    MixtureDataset,
    SeededStream,
    discover_domains,
    fit_normalization,
    mixture_weights,
)

MODEL = ModelConfig(encoder="tiny", image_size=(16, 16), horizon=3)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    make_synthetic_store(root / "metres.zarr", SyntheticDomain("metres", num_episodes=6, episode_length=5, image_size=16))
    make_synthetic_store(root / "centimetres.zarr",
                         SyntheticDomain("centimetres", num_episodes=4, episode_length=5, image_size=16, action_scale=100))
    make_synthetic_store(root / "scenes.zarr", SyntheticDomain("scenes", num_episodes=6, episode_length=4, image_size=16,
                                                               scenes=("sink", "stove", "table")))
    make_synthetic_store(root / "mine.zarr", SyntheticDomain("mine", num_episodes=3, episode_length=5, image_size=16))
    return root


def _weights(config):
    return dict(zip([d.name for d in discover_domains(config)], mixture_weights(config, discover_domains(config))))


def test_weights_by_size_uniform_explicit_and_file_with_a_cotrain_share(stores, tmp_path):
    pre = (str(stores / "metres.zarr"), str(stores / "centimetres.zarr"))
    co = (str(stores / "mine.zarr"),)
    by_size = _weights(MixtureConfig(paths=pre, cotrain=co, val_fraction=0.0))
    assert by_size == pytest.approx({"metres": 0.95 * 30 / 50, "centimetres": 0.95 * 20 / 50, "mine": 0.05})
    uniform = _weights(MixtureConfig(paths=pre, cotrain=co, weights="uniform", cotrain_share=0.2, val_fraction=0.0))
    assert uniform == pytest.approx({"metres": 0.4, "centimetres": 0.4, "mine": 0.2})
    explicit = _weights(MixtureConfig(paths=pre, weights={"metres": 1, "centimetres": 3}, val_fraction=0.0))
    assert explicit == pytest.approx({"metres": 0.25, "centimetres": 0.75})
    run = tmp_path / "remix_run"
    run.mkdir()
    (run / "weights.json").write_text(json.dumps({"domains": ["metres", "centimetres"],
                                                  "weights": {"metres": 0.9, "centimetres": 0.1}}))
    for spec in (run, run / "weights.json"):  # the remix-weights run directory or its weights.json
        assert _weights(MixtureConfig(paths=pre, weights=str(spec), val_fraction=0.0)) == pytest.approx(
            {"metres": 0.9, "centimetres": 0.1})


def test_domains_from_a_per_episode_field(stores):
    config = MixtureConfig(paths=(str(stores / "scenes.zarr"),), domain_key="scene", weights="uniform",
                           val_fraction=0.0)
    domains = discover_domains(config)
    assert [d.name for d in domains] == ["sink", "stove", "table"]
    assert [list(d.train_episodes) for d in domains] == [[0, 3], [1, 4], [2, 5]]


def test_subset_from_remix_subset_trains_on_its_stores_with_the_exact_weights(stores, tmp_path):
    from remix.core.subset import run_subset

    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"domains": ["metres", "centimetres"],
                                   "weights": {"metres": 0.3, "centimetres": 0.7}}))
    run_subset(weights, 0.5, tmp_path / "subset",
               paths=[str(stores / "metres.zarr"), str(stores / "centimetres.zarr")])
    config = MixtureConfig(subset=str(tmp_path / "subset"), val_fraction=0.0)
    domains = discover_domains(config)
    assert [d.name for d in domains] == ["metres", "centimetres"]
    assert all(d.store.parent == tmp_path / "subset" for d in domains)
    assert sum(d.num_train_steps for d in domains) < 50
    assert mixture_weights(config, domains) == pytest.approx([0.3, 0.7])
    with pytest.raises(ConfigError, match="not both"):
        MixtureConfig(paths=(str(stores / "metres.zarr"),), subset=str(tmp_path / "subset"))
    with pytest.raises(ConfigError, match="not a remix-subset"):
        discover_domains(MixtureConfig(subset=str(weights)))


def test_sampling_matches_the_requested_weights_and_cotrain_share(stores):
    config = MixtureConfig(paths=(str(stores / "metres.zarr"), str(stores / "centimetres.zarr")),
                           cotrain=(str(stores / "mine.zarr"),), weights={"metres": 0.3, "centimetres": 0.7},
                           val_fraction=0.0)
    domains = discover_domains(config)
    weights = mixture_weights(config, domains)
    n = 40_000
    sampler = WeightedDomainSampler([d.num_train_steps for d in domains], weights, n, seed=1,
                                    names=[d.name for d in domains])
    counts = np.bincount(sampler.domain_of(np.fromiter(iter(sampler), dtype=np.int64)), minlength=3)
    expected = np.array([0.95 * 0.3, 0.95 * 0.7, 0.05])
    sigma = np.sqrt(n * expected * (1 - expected))
    assert np.all(np.abs(counts - n * expected) < 4 * sigma), (counts / n, expected)


def test_bad_mixture_configs_are_clear_errors(stores, tmp_path):
    metres = str(stores / "metres.zarr")
    with pytest.raises(ConfigError, match="no training data"):
        MixtureConfig()
    with pytest.raises(ConfigError, match="cotrain_share"):
        MixtureConfig(paths=(metres,), cotrain_share=1.5)
    with pytest.raises(ConfigError, match="missing \\[\\], unknown \\['bridge'\\]"):
        _weights(MixtureConfig(paths=(metres,), weights={"metres": 1, "bridge": 2}))
    with pytest.raises(ConfigError, match="neither size, uniform"):
        _weights(MixtureConfig(paths=(metres,), weights="runs/missing/weights.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(RemixError, match="not a valid weights.json"):
        _weights(MixtureConfig(paths=(metres,), weights=str(bad)))
    with pytest.raises(ConfigError, match="no per-episode field 'kitchen'"):
        discover_domains(MixtureConfig(paths=(metres,), domain_key="kitchen"))
    with pytest.raises(ConfigError, match="both named"):
        discover_domains(MixtureConfig(paths=(metres, metres)))
    with pytest.raises(ConfigError, match="target_domain='nope'"):
        fit_normalization(discover_domains(MixtureConfig(paths=(metres,))), MODEL, "nope")
    with pytest.raises(ConfigError, match="cameras every store has"):
        domains = discover_domains(MixtureConfig(paths=(metres,)))
        MixtureDataset(domains, ModelConfig(encoder="tiny", cameras=("wrist",)), fit_normalization(domains, MODEL, None))


def test_per_domain_normalization_puts_units_on_one_scale(stores):
    config = MixtureConfig(paths=(str(stores / "metres.zarr"), str(stores / "centimetres.zarr")),
                           cotrain=(str(stores / "mine.zarr"),), val_fraction=0.0)
    domains = discover_domains(config)
    normalization = fit_normalization(domains, MODEL, None)
    assert normalization.target_domain == "mine"  # the co-training robot is the default target
    dataset = MixtureDataset(domains, MODEL, normalization, "train", AugmentConfig(enabled=False))
    per_domain = {name: [] for name in dataset.names}
    for index in range(len(dataset)):
        item = dataset[index]
        per_domain[dataset.names[int(item["domain"])]].append(item["action"][0].numpy())
    metres, centimetres = np.stack(per_domain["metres"]), np.stack(per_domain["centimetres"])
    assert np.allclose(metres[:, :6].std(0), 1, atol=0.35) and np.allclose(centimetres[:, :6].std(0), 1, atol=0.35)
    assert set(np.unique(centimetres[:, 6])) <= {0.0, 1.0}  # gripper left as recorded
    raw = np.array([0.01, -0.02, 0.03, 0.1, 0.0, -0.1, 1.0], np.float32)
    back = normalization.unnormalize_actions(normalization.normalize_actions(raw, "mine"), "mine")
    stats = normalization.actions.stats["mine"]
    np.testing.assert_allclose(back, np.clip(raw, stats.low, stats.high), atol=1e-5)


def test_augmentation_parameters_are_drawn_per_sample_from_its_seed(stores):
    config = MixtureConfig(paths=(str(stores / "metres.zarr"),), val_fraction=0.0)
    domains = discover_domains(config)
    normalization = fit_normalization(domains, MODEL, None)
    dataset = MixtureDataset(domains, MODEL, normalization, "train", AugmentConfig(crop_scale=(0.3, 0.6), hue=0.2))
    first = dataset[(0, 7)]
    assert torch.equal(first["augment"], dataset[(0, 7)]["augment"])  # seeded
    assert not torch.equal(first["augment"], dataset[(0, 8)]["augment"])
    x0, y0, x1, y1, brightness, contrast, hue = first["augment"].tolist()
    assert 0.3 - 1e-6 <= (x1 - x0) * (y1 - y0) <= 0.6 + 1e-6 and 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert 0.8 <= brightness <= 1.2 and 0.8 <= contrast <= 1.2 and abs(hue) <= 0.2
    identity = torch.tensor([0, 0, 1, 1, 1, 1, 0], dtype=torch.float32)
    plain = MixtureDataset(domains, MODEL, normalization, "train", AugmentConfig(enabled=False))
    validation = MixtureDataset(domains, MODEL, normalization, "val", AugmentConfig())
    assert torch.equal(plain[(0, 7)]["augment"], identity)
    assert len(validation) == 0 or torch.equal(validation[0]["augment"], identity)
    last_step_of_first_episode = dataset[(4, 7)]  # there the newest history frame *is* the goal frame
    assert torch.equal(last_step_of_first_episode["images"][0, -1], last_step_of_first_episode["goal"][0])


def test_seeded_stream_resumes_exactly(stores):
    sampler = WeightedDomainSampler([7, 5], [0.5, 0.5], num_samples=10, seed=3)
    full = SeededStream(sampler, seed=3)
    head = [item for _, item in zip(range(35), iter(full))]
    tail = [item for _, item in zip(range(12), iter(SeededStream(sampler, seed=3, start=23)))]
    assert tail == head[23:35]
    assert len({seed for _, seed in head}) == 35


def test_goal_relabeling_picks_a_later_frame_of_the_same_episode(stores):
    config = MixtureConfig(paths=(str(stores / "metres.zarr"),), val_fraction=0.0)
    domains = discover_domains(config)
    normalization = fit_normalization(domains, MODEL, None)
    store = EpisodeStore.open(stores / "metres.zarr")
    frames = np.asarray(store.array("images/cam0")[:])
    relabeled = MixtureDataset(domains, MODEL, normalization, "train", AugmentConfig(enabled=False), goal_relabel=1.0)
    plain = MixtureDataset(domains, MODEL, normalization, "train", AugmentConfig(enabled=False))
    start, end = store.episode_bounds(1)
    index = start + 1  # step 1 of episode 1 (every episode is in the training split)
    goals = set()
    for seed in range(40):
        goal = relabeled[(index, seed)]["goal"][0].permute(1, 2, 0).numpy()
        matches = [row for row in range(len(frames)) if np.array_equal(frames[row], goal)]
        assert matches and all(start + 2 <= row < end for row in matches), "a later frame of the same episode"
        goals.add(matches[0])
    assert len(goals) >= 2, "the relabeled goal varies with the sample seed"
    assert np.array_equal(plain[(index, 0)]["goal"][0].permute(1, 2, 0).numpy(), frames[end - 1])
    with pytest.raises(ConfigError, match="goal_relabel"):
        MixtureConfig(paths=("x",), goal_relabel=1.5)


def test_frames_held_in_memory_give_the_same_items_as_reading_the_store(stores):
    config = MixtureConfig(paths=(str(stores / "metres.zarr"), str(stores / "mine.zarr")), val_fraction=0.0)
    domains = discover_domains(config)
    normalization = fit_normalization(domains, MODEL, None)
    cached = MixtureDataset(domains, MODEL, normalization, "train", AugmentConfig(), goal_relabel=0.5, cache_mb=100)
    read = MixtureDataset(domains, MODEL, normalization, "train", AugmentConfig(), goal_relabel=0.5, cache_mb=0)
    assert all(c is not None for c in cached.cached) and all(c is None for c in read.cached)
    for key in [(0, 1), (7, 2), (len(cached) - 1, 3)]:
        a, b = cached[key], read[key]
        assert all(torch.equal(a[name], b[name]) for name in a)


def test_a_state_size_other_than_the_stores_is_one_clear_error(stores):
    domains = discover_domains(MixtureConfig(paths=(str(stores / "metres.zarr"),), val_fraction=0.0))
    with pytest.raises(ConfigError, match="model.state_dim=5"):
        fit_normalization(domains, ModelConfig(encoder="tiny", image_size=(16, 16), use_state=True, state_dim=5), None)
