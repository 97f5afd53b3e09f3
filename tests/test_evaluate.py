"""`unetskip evaluate`: a tiny trained checkpoint evaluated image by image; its scores checked against
`test`, torchmetrics and `unetskip score` on predict's masks, its files and its refusals."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import ONE_STEP, tiny_flags
from torchmetrics.classification import MulticlassJaccardIndex
from wandb_offline import OfflineRun, offline_run_folders

from unetskip.cli.lightning_cli import cli_main
from unetskip.cli.main import main
from unetskip.evaluate.paired import paired_differences
from unetskip.evaluate.scores import Evaluation

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]


@pytest.fixture(scope="module")
def checkpoints(pet_root, tmp_path_factory) -> dict[str, Path]:
    """One training step each of the U-Net with and without long skips: {"skip": ckpt, "no_skip": ckpt}."""
    found = {}
    for name, skip in (("skip", "true"), ("no_skip", "false")):
        folder = tmp_path_factory.mktemp(name)
        cli_main(
            [
                "fit",
                "--config",
                str(CONFIGS / "unet.yaml"),
                *tiny_flags(pet_root),
                *ONE_STEP,
                *QUIET,
                "--trainer.default_root_dir",
                str(folder),
                "--model.net.skip_connections",
                skip,
            ]
        )
        found[name] = folder / "checkpoints" / "last.ckpt"
    return found


def evaluate(*args: str) -> None:
    main(["evaluate", *args, *QUIET, "--data.num_workers", "0"])


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_scores_are_those_of_test_and_of_torchmetrics(checkpoints, tmp_path, capsys):
    ckpt = checkpoints["skip"]
    evaluate("--ckpt_path", str(ckpt), "--output", str(tmp_path / "out"))
    console = capsys.readouterr().out
    scores = summary(tmp_path / "out")
    tested = cli_main(["test", "--ckpt_path", str(ckpt), *QUIET, "--data.num_workers", "0"])
    logged = tested.trainer.callback_metrics
    for key in (
        "iou/background",
        "iou/pet",
        "dice/pet",
        "iou_macro",
        "pet_iou_pooled",
        "pet_iou_border_band",
    ):
        assert scores["pooled"][key] == pytest.approx(float(logged[f"test/{key}"]), abs=1e-6), key
    jaccard = MulticlassJaccardIndex(num_classes=2, average="none", ignore_index=255)
    model = tested.model.eval()
    with torch.inference_mode():
        for batch in tested.datamodule.test_dataloader():
            jaccard.update(model(batch["image"]).argmax(1), batch["mask"])
    expected = jaccard.compute()
    assert scores["pooled"]["iou/background"] == pytest.approx(float(expected[0]), abs=1e-6)
    assert scores["pooled"]["iou/pet"] == pytest.approx(float(expected[1]), abs=1e-6)
    assert scores["num_images"] == 6 and scores["split"] == "test" and scores["checkpoint"] == str(ckpt)
    rows = csv_rows(tmp_path / "out" / "per_image.csv")
    assert sorted(row["path"] for row in rows) == [f"images/Synthetic_cat_{i}.jpg" for i in range(12, 18)]
    pooled_pixels = sum(int(row["true_pixels/pet"]) for row in rows)
    with (tmp_path / "out" / "confusion_matrix.csv").open() as file:
        confusion = [list(map(int, row[1:])) for row in list(csv.reader(file))[1:]]
    assert sum(confusion[1]) == pooled_pixels  # pooled = the sum of the images' confusions
    for name in ("confusion_matrix.png", "worst.png", "index.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert "pet" in console and str(tmp_path / "out") in console


def test_an_existing_output_is_refused_without_overwrite(checkpoints, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit, match=r"^error: the output folder .*out exists: pass --overwrite"):
        evaluate("--ckpt_path", str(checkpoints["skip"]), "--output", str(tmp_path / "out"))
    evaluate("--ckpt_path", str(checkpoints["skip"]), "--output", str(tmp_path / "out"), "--overwrite")
    assert summary(tmp_path / "out")["num_images"] == 6


def test_default_output_lies_in_the_run_folder(checkpoints):
    evaluate("--ckpt_path", str(checkpoints["no_skip"]), "--split", "val")
    folder = checkpoints["no_skip"].parents[1] / "evaluate-last-val"
    assert summary(folder)["split"] == "val"
    shutil.rmtree(folder)


def test_compare_pairs_images_and_brackets_the_difference(checkpoints, tmp_path):
    out = tmp_path / "paired"
    evaluate(
        "--ckpt_path", str(checkpoints["skip"]), "--compare_ckpt_path", str(checkpoints["no_skip"]),
        "--output", str(out), "--bootstrap_samples", "400",
    )  # fmt: skip
    rows = csv_rows(out / "paired.csv")
    assert len(rows) == 6
    for row in rows:
        for key in ("iou_macro", "iou/pet", "dice/background"):
            a, b, delta = (float(row[f"{key} {part}"]) for part in ("A", "B", "B-A"))
            assert delta == pytest.approx(b - a)
    content = summary(out)
    mean_delta = sum(float(row["iou_macro B-A"]) for row in rows) / len(rows)
    per_image = content["difference"]["per_image"]["iou_macro"]
    assert per_image["b_minus_a"] == pytest.approx(mean_delta)
    assert per_image["low"] <= mean_delta <= per_image["high"]
    assert content["compare"]["pooled"]["iou/pet"] == pytest.approx(
        content["difference"]["pooled"]["iou/pet"]["b"]
    )
    for name in ("gains.png", "losses.png"):
        assert (out / name).is_file()


def test_score_on_predict_masks_reproduces_full_size(checkpoints, pet_root, tmp_path):
    ckpt = checkpoints["skip"]
    evaluate("--ckpt_path", str(ckpt), "--full_size", "--output", str(tmp_path / "full"))
    images = sorted((pet_root / "images").glob("Synthetic_cat_1[2-7].jpg"))
    (tmp_path / "test.txt").write_text("".join(f"{path}\n" for path in images))
    cli_main(
        ["predict", "--ckpt_path", str(ckpt), "--input", str(tmp_path / "test.txt"), "--output",
         str(tmp_path / "masks"), *QUIET]
    )  # fmt: skip
    status = main(
        ["score", str(tmp_path / "masks"), "--truth", str(pet_root), "--output", str(tmp_path / "s")]
    )
    assert status is None
    full, scored = summary(tmp_path / "full"), summary(tmp_path / "s")
    assert full["size"] == "original"
    for kind in ("pooled", "per_image"):
        for key, value in full[kind].items():
            assert scored[kind][key] == pytest.approx(value, abs=1e-9, nan_ok=True), (kind, key)
    assert csv_rows(tmp_path / "full" / "per_image.csv") == csv_rows(tmp_path / "s" / "per_image.csv")


def test_an_undecodable_image_is_skipped_and_listed(checkpoints, pet_root, tmp_path):
    root = tmp_path / "pets"
    shutil.copytree(pet_root, root)
    for name, kept in (("Synthetic_cat_14", 0.6), ("Synthetic_cat_16", 0.05)):
        broken = root / "images" / f"{name}.jpg"
        data = broken.read_bytes()
        broken.write_bytes(data[: int(len(data) * kept)])
    # 14: the header reads but the pixels do not (found while evaluating); 16: not even the header (left
    # out by the data module's setup). Both listed, neither stops the run.
    evaluate(
        "--ckpt_path", str(checkpoints["skip"]), "--data.root", str(root), "--output", str(tmp_path / "o")
    )
    content = summary(tmp_path / "o")
    assert content["num_images"] == 4
    skipped = {item["path"]: item["reason"] for item in content["skipped"]}
    assert sorted(skipped) == ["images/Synthetic_cat_14.jpg", "images/Synthetic_cat_16.jpg"]
    assert skipped["images/Synthetic_cat_14.jpg"].startswith("could not decode sample Synthetic_cat_14")
    assert skipped["images/Synthetic_cat_16.jpg"].startswith("unreadable file")
    assert len(csv_rows(tmp_path / "o" / "per_image.csv")) == 4


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data.mask_mode", "trimap"], r"^error: --ckpt_path .* was trained on the classes "
         r"\['background', 'pet'\] but the data .* has \['background', 'pet', 'border'\]"),
        (["--compare_ckpt_path", "OTHER"], r"^error: --compare_ckpt_path .*other.ckpt was trained on the "
         r"classes \['a', 'b', 'c'\]"),
        (["--data.root", "EMPTY"], r"^error: the test split of .* holds no image"),
        (["--sort_by", "iou/cat"], r"^error: --sort_by 'iou/cat' is not a score; the scores are iou_macro"),
    ],
)  # fmt: skip
def test_bad_input_stops_with_one_line(checkpoints, pet_root, tmp_path, flags, message):
    other = tmp_path / "other.ckpt"
    checkpoint = torch.load(checkpoints["skip"], weights_only=True)
    checkpoint["hyper_parameters"]["class_names"] = ["a", "b", "c"]
    torch.save(checkpoint, other)
    empty = tmp_path / "empty"
    shutil.copytree(pet_root, empty)
    (empty / "annotations" / "test.txt").write_text("")
    flags = [{"OTHER": str(other), "EMPTY": str(empty)}.get(flag, flag) for flag in flags]
    with pytest.raises(SystemExit, match=message):
        evaluate("--ckpt_path", str(checkpoints["skip"]), "--output", str(tmp_path / "o"), *flags)
    assert not (tmp_path / "o").exists()


def test_a_class_absent_from_truth_and_prediction_is_nan():
    evaluation = Evaluation(["background", "pet", "border"], ignore_index=255)
    target = torch.tensor([[0, 0], [1, 255]])
    evaluation.add("a.jpg", torch.tensor([[0, 1], [1, 1]]), target, None)
    evaluation.add("b.jpg", torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long), None)
    first, second = evaluation.image_rows()
    assert first["iou/pet"] == pytest.approx(0.5) and first["iou/background"] == pytest.approx(0.5)
    assert math.isnan(first["iou/border"]) and first["absent/border"] and not first["absent/pet"]
    assert first["iou_macro"] == pytest.approx(0.5)  # the mean of the two classes that are scored
    assert math.isnan(second["iou/pet"]) and second["iou_macro"] == 1.0
    assert second["pet_iou"] == 1.0  # no foreground in either: the metrics' per-image convention
    pooled = evaluation.summary()["pooled"]
    assert pooled["iou/pet"] == pytest.approx(1 / 2) and math.isnan(pooled["iou/border"])
    assert torch.equal(evaluation.confusion_stack().sum(0), evaluation.pooled.confmat)
    assert evaluation.summary()["per_image"]["iou/pet"] == pytest.approx(0.5)  # b's NaN left out


def test_paired_differences_of_identical_models_are_zero():
    evaluation = Evaluation(["background", "pet"], ignore_index=None)
    for seed in range(4):
        pred = torch.randint(2, (4, 4), generator=torch.Generator().manual_seed(seed))
        evaluation.add(f"{seed}.png", pred, torch.randint(2, (4, 4)), None)
    differences = paired_differences(evaluation, evaluation, samples=50)
    assert all(d.difference == 0 and d.low == 0 and d.high == 0 for d in differences["pooled"].values())


def test_the_run_gets_summary_table_and_gallery_in_wandb(checkpoints, tmp_path):
    main(
        ["evaluate", "--ckpt_path", str(checkpoints["skip"]), "--output", str(tmp_path / "o"),
         "--trainer.logger", "unetskip.runs.AutoOfflineWandbLogger", "--trainer.logger.init_args.save_dir",
         str(tmp_path), "--trainer.enable_progress_bar", "false", "--data.num_workers", "0"]
    )  # fmt: skip
    (folder,) = offline_run_folders(tmp_path)
    run = OfflineRun.read(folder)
    assert run.name.endswith("-evaluate")
    scores = summary(tmp_path / "o")
    assert run.summary["evaluate/pooled/iou/pet"] == pytest.approx(scores["pooled"]["iou/pet"])
    assert run.summary["evaluate/num_images"] == 6
    logged = run.metric_keys()
    assert {"evaluate/per_image", "evaluate/worst"} <= logged
    assert run.values("evaluate/per_image")[0]["_type"] == "table-file"
