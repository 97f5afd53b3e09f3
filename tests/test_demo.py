"""`python -m unetskip demo`: served for real on a free localhost port and called through gradio_client, its
mask PNG is predict's, pixel for pixel, in every mode; bad uploads and checkpoints get messages."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ONE_STEP
from PIL import Image
from test_cli import tiny_args
from test_prediction import random_rgb

from unetskip.cli.lightning_cli import cli_main
from unetskip.deploy.demo import main as demo_main
from unetskip.deploy.demo_views import PREDICT_THRESHOLD, coloured_mask, disagreement, threshold_mask
from unetskip.deploy.trained_model import load_trained_model
from unetskip.predict.rendering import OVERLAY_COLOURS, mask_from_probabilities

needs_gradio = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None or importlib.util.find_spec("gradio_client") is None,
    reason='the demo extra is not installed (pip install "unetskip[demo]" gradio_client)',
)
# How long the server may take to start on a loaded machine (importing Gradio, torch, Lightning).
STARTUP_SECONDS = 240
REPO = Path(__file__).resolve().parent.parent


def fit_tiny(pet_root: Path, folder: Path, *flags: str) -> Path:
    """One training step of the tiny U-Net with `flags`; its last.ckpt."""
    cli_main(["fit", *tiny_args(pet_root, folder), *ONE_STEP, *flags])
    (ckpt,) = (folder / "runs").rglob("last.ckpt")
    return ckpt


@pytest.fixture(scope="module")
def checkpoints(pet_root, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny U-Net with and without skip connections."""
    return (
        fit_tiny(pet_root, tmp_path_factory.mktemp("skip")),
        fit_tiny(pet_root, tmp_path_factory.mktemp("noskip"), "--model.net.skip_connections", "false"),
    )


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A JPEG of an odd size, neither the training size nor its aspect ratio."""
    path = tmp_path_factory.mktemp("photo") / "odd cat.jpg"
    Image.fromarray(random_rgb(217, 333, seed=3)).save(path)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory) -> Iterator[dict]:
    """`python -m unetskip demo` comparing both checkpoints, run in an empty folder with its own TMPDIR;
    stopped with Ctrl-C (SIGINT) at the end."""
    from gradio_client import Client

    cwd, tmp = tmp_path_factory.mktemp("cwd"), tmp_path_factory.mktemp("tmp")
    port = free_port()
    command = [sys.executable, "-m", "unetskip", "demo", "--ckpt_path", str(checkpoints[0])]
    command += ["--compare_ckpt_path", str(checkpoints[1]), "--port", str(port)]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "TMPDIR": str(tmp),
    }
    env.pop("GRADIO_TEMP_DIR", None)
    log = cwd.parent / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_SECONDS
    client = None
    while client is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the demo did not start:\n{log.read_text()}")
        try:
            client = Client(
                f"http://127.0.0.1:{port}/", verbose=False, download_files=str(cwd.parent / "client")
            )
        except Exception:  # noqa: BLE001 (not listening yet)
            time.sleep(1)
    yield {"client": client, "port": port, "cwd": cwd, "tmp": tmp, "log": log}
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert not list(tmp.glob("unetskip-demo-*")), "the demo left its temporary folder behind"


def predict_mask(ckpt: Path, image: Path, output: Path, *flags: str) -> np.ndarray:
    cli_main(["predict", "--ckpt_path", str(ckpt), "--input", str(image), "--output", str(output), *flags])
    return np.asarray(Image.open(output / f"{image.stem}.png"))


@needs_gradio
@pytest.mark.parametrize(("mode", "tta"), [("resize", False), ("native", True), ("tiled", True)])
def test_the_mask_png_is_predicts_pixel_for_pixel(server, checkpoints, photo, tmp_path, mode, tta):
    from gradio_client import handle_file

    result = server["client"].predict(
        handle_file(str(photo)), mode, tta, PREDICT_THRESHOLD, api_name="/segment"
    )
    message, files = result[0], result[1:]
    assert "217" in message and "333" in message and mode in message
    for index, ckpt in enumerate(checkpoints):
        overlay, shown_mask, mask_png = files[3 * index : 3 * index + 3]
        flags = ["--mode", mode, *(["--tta"] if tta else [])]
        expected = predict_mask(ckpt, photo, tmp_path / str(index), *flags)
        with Image.open(mask_png) as mask:
            assert mask.mode == "L" and mask.size == (333, 217)
            np.testing.assert_array_equal(np.asarray(mask), expected)
        assert Path(mask_png).name.startswith("odd cat.")
        assert (
            np.asarray(Image.open(overlay)).shape == np.asarray(Image.open(shown_mask)).shape == (217, 333, 3)
        )
    first, second = (np.asarray(Image.open(files[k])) for k in (2, 5))
    differ = np.asarray(Image.open(files[6]))
    assert ((differ == [255, 0, 255]).all(axis=2) == (first != second)).all()
    assert f"differ in {int((first != second).sum())} pixels" in message


@needs_gradio
def test_the_threshold_moves_the_mask_without_running_the_models(server, photo):
    from gradio_client import handle_file

    client = server["client"]
    client.predict(handle_file(str(photo)), "resize", False, PREDICT_THRESHOLD, api_name="/segment")
    for threshold, pet in ((1.0, 0), (0.0, 1)):
        message, *files = client.predict(threshold, api_name="/threshold")
        assert f"threshold {threshold:g}" in message
        for mask_png in (files[2], files[5]):
            assert (np.asarray(Image.open(mask_png)) == pet).all(), threshold


@needs_gradio
def test_a_non_image_gets_a_message(server, tmp_path):
    from gradio_client import handle_file

    upload = tmp_path / "notes.png"
    upload.write_text("this is text, not a PNG")
    message, *files = server["client"].predict(
        handle_file(str(upload)), "resize", False, 0.5, api_name="/segment"
    )
    assert message.startswith("**notes.png was not segmented**") and "cannot identify image file" in message
    assert str(server["tmp"]) not in message  # no server path
    assert files == [None] * 7


@needs_gradio
def test_an_image_over_predicts_pixel_limit_gets_a_message(server, tmp_path):
    from gradio_client import handle_file

    limit = Image.MAX_IMAGE_PIXELS * 2  # Pillow refuses more than this: predict skips such files
    upload = tmp_path / "huge.png"
    Image.new("1", (20_000, limit // 20_000 + 1)).save(upload)  # a few kB, all black
    message, *files = server["client"].predict(
        handle_file(str(upload)), "resize", False, 0.5, api_name="/segment"
    )
    assert message.startswith("**huge.png was not segmented**") and "exceeds limit" in message
    assert files == [None] * 7


@needs_gradio
def test_the_server_writes_nothing_outside_its_temporary_folder(server, photo):
    from gradio_client import handle_file

    server["client"].predict(handle_file(str(photo)), "resize", False, 0.5, api_name="/segment")
    assert list(server["cwd"].iterdir()) == []
    (workdir,) = server["tmp"].glob("unetskip-demo-*")  # Gradio's cache and the mask files
    assert any(workdir.rglob("*.png"))
    log = server["log"].read_text()
    assert "unet-skip-residual-seed42 vs unet-noskip-residual-seed42 on http://127.0.0.1:" in log
    assert "--host 0.0.0.0" in log


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--ckpt_path", "missing.ckpt"], "--ckpt_path: checkpoint missing.ckpt is not a file"),
        (["--ckpt_path", "{text}"], "cannot be read: "),
        (["--ckpt_path", "{skip}", "--compare_ckpt_path", "{trimap}"], "compare checkpoints of one task"),
        (["--ckpt_path", "{skip}", "--examples", "missing"], "--examples missing is not a folder"),
    ],
)
def test_bad_checkpoints_and_folders_stop_the_command(checkpoints, trimap, tmp_path, arguments, message):
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint")
    paths = {"text": text, "skip": checkpoints[0], "trimap": trimap}
    with pytest.raises(SystemExit, match=message):
        demo_main([argument.format(**paths) for argument in arguments])


def test_without_gradio_the_command_says_what_to_install(checkpoints, monkeypatch):
    monkeypatch.setattr("unetskip.deploy.demo.DEMO_PACKAGES", ("gradio", "no_such_package_for_the_demo"))
    with pytest.raises(SystemExit, match=r'no_such_package_for_the_demo: pip install "unetskip\[demo\]"'):
        demo_main(["--ckpt_path", str(checkpoints[0])])


@needs_gradio
def test_a_taken_port_stops_the_command(server, checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # else the command sets it for this process
    with pytest.raises(SystemExit, match=f"cannot serve on 127.0.0.1:{server['port']}"):
        demo_main(["--ckpt_path", str(checkpoints[0]), "--port", str(server["port"])])


@pytest.fixture(scope="module")
def trimap(pet_root, tmp_path_factory) -> Path:
    """The tiny U-Net for the three trimap classes: a checkpoint of another task."""
    return fit_tiny(
        pet_root,
        tmp_path_factory.mktemp("trimap"),
        "--data.mask_mode",
        "trimap",
        "--model.net.num_classes",
        "3",
    )


def test_a_checkpoint_gives_its_run_name_training_size_and_classes(checkpoints, trimap):
    skip, noskip = (load_trained_model(path) for path in checkpoints)
    assert (skip.run_name, noskip.run_name) == ("unet-skip-residual-seed42", "unet-noskip-residual-seed42")
    assert skip.training_size == (32, 32) and skip.batch_size == 4
    assert skip.class_names == ["background", "pet"] and len(load_trained_model(trimap).class_names) == 3


def test_threshold_one_half_is_predicts_argmax_and_other_thresholds_move_it():
    probabilities = torch.rand(2, 7, 9, generator=torch.Generator().manual_seed(0))
    probabilities[:, 0, 0] = 0.5  # a tie: argmax keeps class 0
    probabilities = probabilities / probabilities.sum(dim=0)
    np.testing.assert_array_equal(
        threshold_mask(probabilities, (20, 31), PREDICT_THRESHOLD),
        mask_from_probabilities(probabilities, (20, 31)),
    )
    share = probabilities[1] / probabilities.sum(dim=0)
    for threshold in (0.1, 0.3, 0.7):
        np.testing.assert_array_equal(
            threshold_mask(probabilities, (7, 9), threshold), (share > threshold).numpy()
        )
    three = torch.rand(3, 4, 4).softmax(dim=0)
    np.testing.assert_array_equal(threshold_mask(three, (4, 4), 0.9), mask_from_probabilities(three, (4, 4)))


def test_coloured_mask_and_disagreement_views():
    mask = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    assert coloured_mask(mask).tolist() == [
        [[0, 0, 0], list(OVERLAY_COLOURS[0])],
        [list(OVERLAY_COLOURS[1]), list(OVERLAY_COLOURS[0])],
    ]
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    view = disagreement(image, mask, np.array([[0, 1], [1, 1]], dtype=np.uint8))
    assert view[1, 0].tolist() == [255, 0, 255] and view[0, 0].tolist() == [60, 60, 60]
