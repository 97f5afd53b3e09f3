"""The Gradio page of `python -m unetskip demo`: upload or paste a photo, see each model's overlay and mask,
move the threshold (binary models), download the mask PNG as predict writes it. Needs the `demo` extra."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

from unetskip.data.image_files import UnreadableImageError, load_image
from unetskip.deploy.demo_views import (
    PREDICT_THRESHOLD,
    coloured_mask,
    disagreement,
    legend_html,
    threshold_mask,
)
from unetskip.deploy.trained_model import TrainedModel
from unetskip.predict.options import PredictMode
from unetskip.predict.rendering import overlay, save_image

MODES = ("resize", "native", "tiled")
# Fonts the browser has: the page loads nothing from other sites (Gradio's default theme uses web fonts).
SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "sans-serif")
MONO_FONTS = ("ui-monospace", "monospace")
# Gradio deletes its cached uploads and served images older than this, every this many seconds.
CACHE_SECONDS = 3600


@dataclass(frozen=True)
class Segmented:
    """One photo, (H, W, 3) uint8, and each model's class probabilities, (C, h, w) each, before the
    resize to (H, W); `stem` names its mask file, `summary` says how it was segmented."""

    image: np.ndarray
    stem: str
    probabilities: list[torch.Tensor]
    summary: str


class DemoPage:
    """The page for one model, or two side by side (`models`, of the same classes).

    The mask files offered for download are written under `workdir`; `mode`, `tile_size`, `tile_overlap`
    and `tta` are predict's options (the page can switch mode and TTA).
    """

    def __init__(
        self,
        models: Sequence[TrainedModel],
        workdir: Path,
        mode: PredictMode = "resize",
        tile_size: int | None = None,
        tile_overlap: float = 0.25,
        tta: bool = False,
    ) -> None:
        self.models = list(models)
        self.mode = mode
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.tta = tta
        self.workdir = workdir
        self.class_names = self.models[0].class_names
        self.binary = len(self.class_names) == 2
        self.comparing = len(self.models) == 2

    def segment(self, upload: dict[str, Any] | None, mode: PredictMode, tta: bool, threshold: float) -> list:
        """The page's outputs for an uploaded photo (Gradio's file payload, not preprocessed: the photo
        is decoded here, by predict's decoder): [state, message, *views]."""
        if upload is None:
            return self.blank("")
        if mode not in MODES:  # the page offers MODES only; the API passes any value through
            return self.blank(f"**mode {mode!r} is not one of {', '.join(MODES)}**")
        name, path = upload.get("orig_name") or "pasted image", upload["path"]
        try:
            image = load_image(Path(path))  # (H, W, 3)
        except UnreadableImageError as error:
            reason = str(error).replace(f" '{path}'", "").replace(path, name)  # not Gradio's cache path
            return self.blank(
                f"**{name} was not segmented**: it is not an image that can be read ({reason})."
            )
        started = time.perf_counter()
        try:
            probabilities = [
                model.probabilities(
                    image, model.inferer(mode, self.tile_size, self.tile_overlap, tta), mode == "resize"
                )
                for model in self.models
            ]
        except RuntimeError as error:  # out of memory in native mode, for instance
            return self.blank(f"**{name} was not segmented** in {mode} mode: {error}")
        height, width = image.shape[:2]
        summary = (
            f"{name}: {width}x{height} px, {mode} mode{', flip TTA' if tta else ''}, "
            f"{time.perf_counter() - started:.2f} s"
        )
        segmented = Segmented(image, Path(name).stem, probabilities, summary)
        return [segmented, *self.views(segmented, threshold)]

    def views(self, segmented: Segmented, threshold: float) -> list:
        """[message, then per model its overlay, coloured mask and mask file, then where they differ]."""
        size = segmented.image.shape[:2]
        masks = [
            threshold_mask(p, size, threshold if self.binary else PREDICT_THRESHOLD)
            for p in segmented.probabilities
        ]
        folder = self.workdir / "masks" / uuid.uuid4().hex
        views: list = []
        for model, mask in zip(self.models, masks, strict=True):
            path = folder / (
                f"{segmented.stem}.{model.run_name}.png" if self.comparing else f"{segmented.stem}.png"
            )
            save_image(mask, path, "PNG")
            views += [overlay(segmented.image, mask), coloured_mask(mask), str(path)]
        message = segmented.summary
        if self.binary:
            message += f"; threshold {threshold:g}" + (
                " (predict's mask)" if threshold == PREDICT_THRESHOLD else ""
            )
        if self.comparing:
            differ = int((masks[0] != masks[1]).sum())
            message += f"; the masks differ in {differ} pixels ({100 * differ / masks[0].size:.2f} %)"
            views.append(disagreement(segmented.image, *masks))
        return [message, *views]

    def rethreshold(self, segmented: Segmented | None, threshold: float) -> list:
        """[message, *views] at a new threshold, without running the models again."""
        if segmented is None:
            return self.blank("")[1:]
        return self.views(segmented, threshold)

    def blank(self, message: str) -> list:
        """[state, message, *views] with no photo."""
        return [None, message, *[None] * (3 * len(self.models) + self.comparing)]

    def blocks(self, examples: Sequence[Path]) -> gr.Blocks:
        """The page, offering `examples` (image paths) to try."""
        names = [model.run_name for model in self.models]
        with gr.Blocks(
            title="unetskip demo", analytics_enabled=False, delete_cache=(CACHE_SECONDS, CACHE_SECONDS)
        ) as blocks:
            gr.Markdown(
                f"## unetskip: {' vs '.join(names)}\n"
                "Upload or paste a photo: each model's mask, painted over the photo and on its own, is what "
                "`python -m unetskip predict` writes for it with the same mode and TTA."
            )
            with gr.Row():
                with gr.Column(scale=1, min_width=260):
                    photo = gr.Image(
                        type="filepath", sources=["upload", "clipboard"], label="Photo", elem_id="photo"
                    )
                    mode = gr.Radio(list(MODES), value=self.mode, label="Mode (predict's --mode)")
                    tta = gr.Checkbox(value=self.tta, label="Flip TTA (predict's --tta)")
                    threshold = gr.Slider(
                        0.0,
                        1.0,
                        value=PREDICT_THRESHOLD,
                        step=0.01,
                        label=f"Threshold: {self.class_names[1]} where its probability exceeds it "
                        f"(0.5: predict's argmax)"
                        if self.binary
                        else "Threshold",
                        visible=self.binary,
                    )
                    if examples:
                        gr.Examples([[str(path)] for path in examples], inputs=[photo], label="Examples")
                with gr.Column(scale=3 if self.comparing else 2):
                    message = gr.Markdown(label="message", elem_id="message")
                    gr.HTML(legend_html(self.class_names, self.comparing))
                    views = []
                    with gr.Row():
                        for index, name in enumerate(names):
                            with gr.Column():
                                views += [
                                    self.picture(f"{name}: overlay", "jpeg", f"overlay-{index}"),
                                    self.picture(f"{name}: mask", "png", f"mask-{index}"),
                                    gr.DownloadButton(
                                        f"Mask PNG of {name}", size="sm", elem_id=f"download-{index}"
                                    ),
                                ]
                        if self.comparing:
                            with gr.Column():
                                views.append(self.picture("where the masks differ", "png", "disagreement"))
            state = gr.State()
            inputs, outputs = [photo, mode, tta, threshold], [state, message, *views]
            photo.change(self.segment, inputs, outputs, preprocess=False, api_name="segment")
            for control in (mode, tta):
                control.change(self.segment, inputs, outputs, preprocess=False, api_name=False)
            threshold.release(self.rethreshold, [state, threshold], [message, *views], api_name="threshold")
        return blocks

    @staticmethod
    def picture(label: str, image_format: str, elem_id: str) -> gr.Image:
        """An output image (`elem_id` for scripts); `image_format` is how Gradio sends it to the browser."""
        return gr.Image(
            label=label, format=image_format, interactive=False, buttons=["fullscreen"], elem_id=elem_id
        )

    def launch(self, host: str, port: int, examples: Sequence[Path]) -> None:
        """Serves the page on `host`:`port` until interrupted."""
        theme = gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS))
        self.blocks(examples).launch(
            server_name=host,
            server_port=port,
            show_error=True,
            allowed_paths=[str(path) for path in examples],
            theme=theme,
            ssr_mode=False,
        )
