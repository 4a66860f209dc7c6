"""benchmarks/ablation.py's options and run configs of the noise-transport study (the scoring: tests/synthetic)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("ablation_benchmark", REPO / "benchmarks" / "ablation.py")
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


def test_world_picks_its_config_and_conflicting_options_are_refused(capsys):
    args = benchmark.parse_args(["--mode", "transport", "--world", "textured", "--rows", "I", "W"])
    assert args.config == "configs/synthetic_textured.yaml" and args.rows == ["I", "W"]
    assert benchmark.parse_args([]).config == "configs/synthetic.yaml"
    for argv, message in ((["--world", "textured", "--config", "configs/synthetic.yaml"], "not both"),
                          (["--mode", "noise", "--rows", "I"], "--rows is for --mode transport"),
                          (["--mode", "transport", "--rows", "X"], "invalid choice")):
        with pytest.raises(SystemExit):
            benchmark.parse_args(argv)
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("world", sorted(benchmark.WORLD_CONFIGS))
def test_a_transport_run_trains_and_samples_with_its_noise_on_its_world(world, tmp_path):
    base = yaml.safe_load((REPO / benchmark.WORLD_CONFIGS[world]).read_text())
    cfg = benchmark.run_config(base, tmp_path, noise="partial:0.5", fusion="both", seed=2, max_steps=400,
                               data_root=None, smoke=False)
    model = cfg["model"]["init_args"]
    assert model["noise_sharing"] == model["sample_noise_sharing"] == "partial:0.5"
    assert cfg["trainer"]["max_steps"] == 400 and cfg["seed_everything"] == 2
    assert cfg["data"]["init_args"].get("world", "default") == world
