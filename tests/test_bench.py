"""`python -m unetskip.bench` in its quick mode: the report's structure and that every number is real.

Speed is never asserted: only that the table has its columns and rows and that the numbers are positive
and finite.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest
import torch

from unetskip.bench import memory
from unetskip.bench.command import main
from unetskip.bench.report import MODEL_COLUMNS, NETWORK_ALONE, REAL_FIT_COLUMNS
from unetskip.bench.settings import Settings
from unetskip.bench.subjects import load_subject
from unetskip.models import UNet


def positive_numbers(record: dict) -> list[float]:
    return [value for value in record.values() if isinstance(value, float)]


def markdown_tables(printed: str) -> list[list[str]]:
    """The markdown tables of a report, each as its lines."""
    tables, current = [], []
    for line in [*printed.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_quick_bench_prints_the_table_and_writes_every_number(pet_root, tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["--quick", "--image-size", "32", "--data-root", str(pet_root), "--json", str(out)]
    results = main(["--device", "cpu", *args])
    printed = capsys.readouterr().out

    assert results == json.loads(out.read_text())
    tables = markdown_tables(printed)
    assert len(tables) == 2, printed
    table = tables[0]
    columns = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert columns == [c.format(base="smp_unet") for c in MODEL_COLUMNS]
    assert [row.split("|")[1].strip() for row in table[2:]] == ["unet", "no_skip", "smp_unet"]
    assert table[-1].split("|")[5].strip() == "1.00"  # the baseline against itself
    for line in ("device: cpu", "batch 2, image 32x32, precision 32-true", "torch threads"):
        assert line in printed
    assert "Lightning overhead (unet" in printed and "Data: train loader alone" in printed
    # Measurements and ratios only: no verdicts against targets.
    assert not any(word in printed for word in ("target", "MISSED", " met")), printed

    # On a CPU the defaults follow training: 32-true, NHWC (the default networks have no layer against it).
    assert results["settings"]["precision"] == "32-true" and results["settings"]["channels_last"] is True
    assert [m["layout"] for m in results["models"]] == ["NHWC"] * 3
    for model in results["models"]:
        assert len(positive_numbers(model)) == 6
        assert all(math.isfinite(v) and v > 0 for v in positive_numbers(model)), model
    overhead, loader = results["lightning_overhead"], results["loader"]
    assert overhead["plain_img_s"] > 0 and overhead["lightning_img_s"] > 0
    assert math.isfinite(overhead["overhead"])
    assert (
        loader["num_workers"] >= 1
        and loader["img_s"] > 0
        and loader["decode_ms"] > 0
        and loader["sample_ms"] > 0
    )

    # The real fits: without and with data.cache at the DataModule's default workers, then the network
    # alone, whose img/s is the model table's train img/s of the first config.
    fit_table = tables[1]
    assert cells(fit_table[0]) == list(REAL_FIT_COLUMNS)
    rows = [cells(line) for line in fit_table[2:]]
    assert [row[0] for row in rows] == ["decoded every step", "data.cache", NETWORK_ALONE]
    assert rows[-1][2] == cells(table[2])[3] and rows[-1][3] == "1.00"
    fits = results["real_fit"]
    assert [fit["cache"] for fit in fits] == [False, True] and {fit["name"] for fit in fits} == {"unet"}
    for fit, row in zip(fits, rows, strict=False):
        assert all(math.isfinite(fit[key]) and fit[key] > 0 for key in ("img_s", "setup_s")), fit
        assert row[2] == f"{fit['img_s']:.1f}" and int(row[1]) == fit["num_workers"] >= 0
        ratio = fit["img_s"] / results["models"][0]["train_img_s"]
        assert float(row[3]) == pytest.approx(ratio, abs=0.006)
    assert fits[0]["cache_mib"] == 0 < fits[1]["cache_mib"]


def test_quick_bench_real_fit_takes_the_workers_and_can_be_skipped(pet_root, capsys):
    args = ["--device", "cpu", "--quick", "--image-size", "32", "--data-root", str(pet_root)]
    args += ["--configs", "configs/unet.yaml", "--baseline", "unet"]  # one network: seconds
    results = main([*args, "--skip-overhead", "--skip-loader", "--fit-workers", "0", "1"])
    fits = results["real_fit"]
    assert [(fit["cache"], fit["num_workers"]) for fit in fits] == [
        (False, 0),
        (False, 1),
        (True, 0),
        (True, 1),
    ]
    assert all(fit["img_s"] > 0 for fit in fits)
    capsys.readouterr()
    skipped = main([*args, "--skip-overhead", "--skip-loader", "--skip-real-fit"])
    assert skipped["real_fit"] == [] and "Real fit" not in capsys.readouterr().out


def test_params_and_macs_follow_the_architecture():
    small, large = load_subject("configs/unet.yaml"), load_subject("configs/unet.yaml")
    large.net_args["base_channels"] = 2 * small.net_args["base_channels"]
    assert load_subject("configs/no_skip.yaml").net_args["skip_connections"] is False
    params = [sum(p.numel() for p in s.build_net().parameters()) for s in (small, large)]
    assert 3.5 < params[1] / params[0] < 4.1  # convolutions dominate: channels x2 -> weights x4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--configs", "configs/nowhere.yaml"], "nowhere.yaml"),
        (["--baseline", "resnet"], "--baseline 'resnet'"),
        (["--batch-size", "0"], "batch_size must be >= 1"),
        (["--warmup", "0"], "warmup must be >= 1"),
    ],
)
def test_bad_options_stop_with_a_message(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(["--device", "cpu", "--quick", *argv])


def test_bad_config_names_the_key(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("model:\n  net:\n    init_args: {depth: 2}\n")
    with pytest.raises(SystemExit, match="broken.yaml: model.net must have a class_path"):
        main(["--device", "cpu", "--quick", "--configs", str(config)])


@pytest.mark.parametrize("reset_peak", [True, False])
def test_peak_memory_sees_an_allocation(monkeypatch, tmp_path, reset_peak):
    if not reset_peak:  # no /proc/self/clear_refs to write: RSS is sampled instead
        monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "absent" / "clear_refs")
    device = torch.device("cpu")
    before = memory.baseline_memory(device)
    with memory.PeakMemory(device) as peak:
        block = torch.ones(64, 2**20 // 4)  # 64 MiB, written
        time.sleep(0.05)
        del block
    assert 60 * memory.MIB < peak.peak - before < 200 * memory.MIB


def test_bench_keeps_nchw_for_a_network_that_nhwc_breaks_on_a_cpu():
    settings = Settings(torch.device("cpu"), "32-true", True, False, 2, 32, 1, 1, 1)
    assert settings.memory_format(UNet(base_channels=16, depth=2)) == torch.channels_last
    assert settings.memory_format(UNet(base_channels=8, depth=2)) == torch.contiguous_format


def test_settings_reject_an_unknown_precision():
    with pytest.raises(ValueError, match="precision must be one of"):
        Settings(torch.device("cpu"), "bf16", False, False, 2, 32, 1, 1, 1)


def test_an_installed_package_benchmarks_its_default_configs_anywhere(installed_env, pet_root, tmp_path):
    """The default configs ship in the wheel: no checkout needed (the Docker image's case)."""
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "unetskip.bench", "--quick", "--device", "cpu", "--image-size", "32"]
    command += ["--skip-overhead", "--data-root", str(pet_root), "--json", str(out)]
    done = subprocess.run(command, env=installed_env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert [model["name"] for model in results["models"]] == ["unet", "no_skip", "smp_unet"]
    assert results["loader"]["img_s"] > 0
