"""remix-data synthetic never replaces existing stores silently and refuses unbounded sizes in one line."""

from __future__ import annotations

import subprocess
import sys

from remix.data import EpisodeStore


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from remix.data.cli import main; sys.argv[0] = 'remix-data'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_synthetic_keeps_existing_stores_unless_overwrite(tmp_path):
    out = tmp_path / "data"
    assert run_cli("synthetic", str(out), "synthetic.episode_length=3").returncode == 0
    first = sorted(out.glob("*.zarr"))
    with EpisodeStore.open(first[0], mode="a") as store:  # a demo added by hand must survive a rerun
        store.add_episode(store.read_episode(0), **{name: store.field(name)[0] for name in store.fields})
    kept = EpisodeStore.open(first[0]).num_episodes
    again = run_cli("synthetic", str(out), "synthetic.episode_length=3")
    assert again.returncode == 1 and again.stderr.strip().startswith("error: ") and "overwrite=true" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert EpisodeStore.open(first[0]).num_episodes == kept
    replaced = run_cli("synthetic", str(out), "synthetic.episode_length=3", "overwrite=true")
    assert replaced.returncode == 0 and EpisodeStore.open(first[0]).num_episodes == kept - 1


def test_synthetic_refuses_a_file_and_huge_sizes(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, expected in (((str(afile),), "is a file"),
                           ((str(tmp_path / "o"), "synthetic.image_size=100000"), "synthetic.image_size=100000 must be"),
                           ((str(tmp_path / "o"), "synthetic.seed=-1"), "synthetic.seed=-1 must be")):
        result = run_cli("synthetic", *args)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert expected in result.stderr
