"""`unetskip export`: a checkpoint's network as an ONNX model, checked with onnxruntime.

The ONNX model is `unetskip.predict.inferer.ProbabilityNet`: input `image`, uint8 RGB (B, 3, H, W); output
`probabilities`, float32 (B, C, H, W). Batch, height and width are dynamic (any H, W >= 1: the graph
normalises, pads to a multiple of 32 and crops back itself). Like `unetskip predict --mode native`, it
runs on the image as given: resize to the training size (in the model's metadata) first for what
`--mode resize` does. Needs the `export` extra: `pip install "unetskip[export]"`.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from jsonargparse import auto_cli

from unetskip.deploy.trained_model import load_trained_model
from unetskip.predict.inferer import ProbabilityNet

EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
# Largest absolute difference allowed between onnxruntime's and PyTorch's probabilities (float32 on a CPU).
PROBABILITY_TOLERANCE = 1e-4


def check_sizes(training_size: tuple[int, int]) -> list[tuple[int, int, int]]:
    """(batch, height, width) of the inputs the export is checked on: training size, odd sizes, 1x1."""
    return [(2, *training_size), (1, 217, 333), (3, 64, 48), (1, 1, 1)]


def export_onnx(
    net: torch.nn.Module, output: Path, training_size: tuple[int, int], class_names: Sequence[str]
) -> None:
    """Write `ProbabilityNet(net)` to `output` with dynamic batch, height and width and metadata
    (`class_names`, `training_size`, `input`, `output`)."""
    import onnx

    model = ProbabilityNet(net).eval()
    example = torch.randint(0, 256, (2, 3, *training_size), dtype=torch.uint8)
    dynamic = torch.export.Dim.DYNAMIC
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (example,),
        output,
        input_names=["image"],
        output_names=["probabilities"],
        dynamo=True,
        dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic},),
        external_data=False,
    )
    proto = onnx.load(output)
    metadata = {
        "class_names": json.dumps(list(class_names)),
        "training_size": json.dumps(list(training_size)),
        "input": "image: uint8 RGB (batch, 3, height, width), any height and width",
        "output": "probabilities: float32 (batch, classes, height, width), softmax over classes",
    }
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, output)


def compare_with_onnxruntime(
    net: torch.nn.Module, path: Path, sizes: Sequence[tuple[int, int, int]], seed: int = 0
) -> list[tuple[tuple[int, int, int], float]]:
    """For each (batch, height, width): the largest absolute difference between the probabilities of the
    ONNX model at `path` (onnxruntime, CPU) and of `ProbabilityNet(net)` on the same random image."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = ProbabilityNet(net).eval()
    generator = torch.Generator().manual_seed(seed)
    differences = []
    for batch, height, width in sizes:
        images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=generator)
        with torch.inference_mode():
            expected = model(images).numpy()
        (actual,) = session.run(["probabilities"], {"image": images.numpy()})
        if actual.shape != expected.shape:
            raise RuntimeError(f"ONNX output shape {actual.shape} != PyTorch {expected.shape}")
        differences.append(((batch, height, width), float(np.abs(actual - expected).max())))
    return differences


def export(ckpt_path: str, output: str = "model.onnx") -> None:
    """Export a checkpoint's network to ONNX and check it against PyTorch with onnxruntime.

    Args:
        ckpt_path: a checkpoint written by `unetskip fit` (it rebuilds the network alone).
        output: the .onnx file to write (weights included).
    """
    missing = [name for name in EXPORT_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(f'error: export needs {", ".join(missing)}: pip install "unetskip[export]"')
    try:
        model = load_trained_model(ckpt_path)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: --ckpt_path: {error}") from error

    path = Path(output)
    export_onnx(model.module.net, path, model.training_size, model.class_names)
    differences = compare_with_onnxruntime(model.module.net, path, check_sizes(model.training_size))
    for (batch, height, width), difference in differences:
        print(f"checked {batch}x3x{height}x{width}: max |onnxruntime - torch| = {difference:.2e}")
    worst = max(difference for _, difference in differences)
    if worst > PROBABILITY_TOLERANCE:
        raise SystemExit(f"error: {path} differs from PyTorch by {worst:.2e} > {PROBABILITY_TOLERANCE:.0e}")
    print(f"wrote {path} (probabilities within {PROBABILITY_TOLERANCE:.0e} of PyTorch)")


def main(args: list[str] | None = None) -> None:
    """`unetskip export ARGS` (`args`: ARGS; None for sys.argv[1:])."""
    auto_cli(export, as_positional=False, args=args, prog="unetskip export")


if __name__ == "__main__":
    main()
