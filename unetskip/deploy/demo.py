"""`python -m unetskip demo`: a web page to try a checkpoint on your own photos, and to put two checkpoints
(e.g. with and without skip connections) side by side on them. See docs/demo.md.

The page shows exactly the masks `unetskip predict` writes for the same checkpoint, `--mode`, tile
settings and `--tta`: the same decoder, resize, inferer and argmax (`unetskip.deploy.trained_model`). It needs
the `demo` extra (Gradio): `pip install "unetskip[demo]"`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from jsonargparse import ActionYesNo, ArgumentParser, Namespace

from unetskip.data.image_files import find_images
from unetskip.deploy.trained_model import TrainedModel, load_trained_model
from unetskip.predict.options import PredictMode

DEMO_PACKAGES = ("gradio",)
# How many images of --examples the page offers.
MAX_EXAMPLES = 12


def demo_parser() -> ArgumentParser:
    """The options of `python -m unetskip demo` (model and inference flags named as predict's)."""
    parser = ArgumentParser(prog="unetskip demo", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", type=str, required=True, help="A checkpoint written by unetskip fit.")
    parser.add_argument(
        "--compare_ckpt_path",
        type=str | None,
        default=None,
        help="A second checkpoint of the same classes: both masks side by side and where they differ.",
    )
    parser.add_argument(
        "--host",
        type=str,
        default="127.0.0.1",
        help="Address to serve on: 127.0.0.1 is this machine only; 0.0.0.0 every network interface.",
    )
    parser.add_argument("--port", type=int, default=7860, help="Port to serve on.")
    parser.add_argument(
        "--examples", type=str | None, default=None, help="A folder of images the page offers as examples."
    )
    parser.add_argument(
        "--mode",
        type=PredictMode,
        default="resize",
        help="As predict's --mode (resize, native, tiled); the page can switch it.",
    )
    parser.add_argument("--tile_size", type=int | None, default=None, help="As predict's --tile_size.")
    parser.add_argument("--tile_overlap", type=float, default=0.25, help="As predict's --tile_overlap.")
    parser.add_argument(
        "--tta", action=ActionYesNo, default=False, help="As predict's --tta; the page can switch it."
    )
    return parser


def load_models(ckpt_path: str, compare_ckpt_path: str | None) -> list[TrainedModel]:
    """The model of each checkpoint given.

    Raises:
        SystemExit: a checkpoint cannot be read, or the two were trained for different classes.
    """
    models = []
    for flag, path in (("--ckpt_path", ckpt_path), ("--compare_ckpt_path", compare_ckpt_path)):
        if path is None:
            continue
        try:
            models.append(load_trained_model(path))
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(f"error: {flag}: {error}") from error
    if len(models) == 2 and models[0].class_names != models[1].class_names:
        raise SystemExit(
            f"error: --compare_ckpt_path {compare_ckpt_path} predicts the classes {models[1].class_names}, "
            f"--ckpt_path {ckpt_path} predicts {models[0].class_names}: compare checkpoints of one task "
            "(the same data.mask_mode)"
        )
    return models


def example_images(folder: str | None) -> list[Path]:
    """The first MAX_EXAMPLES images of `folder` (none without one).

    Raises:
        SystemExit: `folder` is not a folder.
    """
    if folder is None:
        return []
    if not Path(folder).is_dir():
        raise SystemExit(f"error: --examples {folder} is not a folder")
    return find_images(folder).paths[:MAX_EXAMPLES]


def serve(options: Namespace) -> None:
    """Builds the page and serves it until interrupted. Gradio keeps uploads and the images it shows in
    its cache folder (GRADIO_TEMP_DIR): unless that is set, a new temporary folder, deleted on exit."""
    missing = [name for name in DEMO_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(f'error: the demo needs {", ".join(missing)}: pip install "unetskip[demo]"')
    models = load_models(options.ckpt_path, options.compare_ckpt_path)
    examples = example_images(options.examples)
    workdir = Path(tempfile.mkdtemp(prefix="unetskip-demo-"))
    # Read by Gradio when it is imported (below): where it caches uploads and the images it serves.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workdir / "gradio"))
    from unetskip.deploy.demo_page import DemoPage

    try:
        page = DemoPage(models, workdir, options.mode, options.tile_size, options.tile_overlap, options.tta)
        names = " vs ".join(model.run_name for model in models)
        print(f"demo: {names} on http://{options.host}:{options.port}")
        if options.host in ("127.0.0.1", "localhost"):
            print("demo: served to this machine only; --host 0.0.0.0 serves other machines (and Docker's -p)")
        try:
            page.launch(options.host, options.port, examples)
        except OSError as error:  # the port is taken, the address is not this machine's
            raise SystemExit(f"error: cannot serve on {options.host}:{options.port}: {error}") from error
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(args: list[str] | None = None) -> None:
    """`unetskip demo ARGS` (`args`: ARGS; None for sys.argv[1:])."""
    serve(demo_parser().parse_args(args))
