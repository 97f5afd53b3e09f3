"""From uint8 images to probabilities: normalisation as in training, padding, tiles, flip TTA; output names;
decoding of 16-bit and EXIF-rotated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from unetskip.data.image_files import ImageFileDataset, load_image
from unetskip.data.normalization import denormalize
from unetskip.data.oxford_pet_datamodule import OxfordPetDataModule
from unetskip.data.transforms import eval_transforms, train_transforms
from unetskip.models import UNet
from unetskip.predict.inferer import Inferer, ProbabilityNet, class_probabilities, normalize, window_starts
from unetskip.predict.writer import output_stems, output_suffixes


@pytest.mark.parametrize("transforms", [eval_transforms((9, 11)), train_transforms((9, 11))])
def test_training_and_evaluation_transforms_normalise_as_predict(transforms):
    image = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    output = transforms(image=image, mask=np.zeros((9, 11), np.uint8))["image"]  # (3, 9, 11) float32
    assert output.dtype == torch.float32
    # Whatever the augmentations did to the pixels, normalize(their uint8 values) is what the network gets.
    pixels = torch.from_numpy(denormalize(output[None])).permute(0, 3, 1, 2)  # (1, 3, 9, 11) uint8
    assert torch.equal(normalize(pixels)[0], output)
    # The ImageNet statistics: 0.485 * 255 is the red channel's zero.
    torch.testing.assert_close(
        normalize(torch.full((3, 1, 1), 124, dtype=torch.uint8))[0, 0, 0],
        torch.tensor((124 - 0.485 * 255) / (0.229 * 255)),
    )


def test_an_evaluation_batch_equals_the_predict_input_of_the_same_file(pet_root):
    datamodule = OxfordPetDataModule(root=str(pet_root), image_size=(24, 40), num_workers=0)
    datamodule.setup("test")
    dataset = datamodule.datasets["test"]
    paths = [sample.image_path for sample in dataset.samples]
    predict_inputs = ImageFileDataset(paths, image_size=(24, 40))  # predict --mode resize
    for index in range(len(dataset)):
        pixels = predict_inputs[index]["image"]  # uint8 (3, 24, 40)
        assert torch.equal(dataset[index]["image"], normalize(pixels))


class NeedsMultipleOf32(nn.Module):
    """A pointwise 2-class network that, like smp's Unet, refuses sizes not divisible by 32."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise RuntimeError(f"size {tuple(x.shape[-2:])} is not divisible by 32")
        return self.conv(x)


@pytest.mark.parametrize("size", [(1, 1), (217, 333), (64, 32)])
def test_probabilities_of_any_size_through_a_network_that_needs_multiples_of_32(size):
    net = NeedsMultipleOf32()
    images = torch.randint(0, 256, (2, 3, *size), dtype=torch.uint8)
    probabilities = ProbabilityNet(net)(images)
    assert probabilities.shape == (2, 2, *size)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2, *size))
    # A pointwise network sees no padding: the same as running it on the unpadded image.
    torch.testing.assert_close(probabilities, net.conv(normalize(images)).softmax(dim=1))


@pytest.mark.parametrize(
    ("length", "window", "overlap", "starts"),
    [
        (10, 10, 0.25, [0]),
        (10, 4, 0.0, [0, 4, 6]),
        (10, 4, 0.5, [0, 2, 4, 6]),
        (5, 2, 0.25, [0, 2, 3]),
        (1, 1, 0.9, [0]),
    ],
)
def test_window_starts_cover_the_length_and_end_at_it(length, window, overlap, starts):
    assert window_starts(length, window, overlap) == starts


def test_tiles_blend_back_to_the_whole_image_for_a_pointwise_network():
    net = NeedsMultipleOf32()
    image = torch.randint(0, 256, (3, 45, 70), dtype=torch.uint8)
    whole = Inferer()(net, [image])[0]
    tiled = Inferer(tile_size=32, tile_overlap=0.3, tile_batch_size=3)(net, [image])[0]
    assert tiled.shape == (2, 45, 70)
    torch.testing.assert_close(tiled, whole)


def test_flip_tta_averages_with_the_flipped_image():
    net = UNet(base_channels=4, depth=2).eval()
    images = [torch.randint(0, 256, (3, 20, 27), dtype=torch.uint8) for _ in range(2)]
    with torch.no_grad():
        averaged = Inferer(flip_tta=True)(net, images)
        for image, result in zip(images, averaged, strict=True):
            plain = class_probabilities(net, image[None])[0]
            flipped = class_probabilities(net, image.flip(-1)[None])[0].flip(-1)
            torch.testing.assert_close(result, (plain + flipped) / 2)
            assert not torch.allclose(plain, flipped)  # the check would be empty otherwise


def test_images_of_different_sizes_keep_their_sizes_and_order():
    net = UNet(base_channels=4, depth=2).eval()
    sizes = [(5, 7), (5, 7), (9, 3), (5, 7)]
    images = [torch.randint(0, 256, (3, *size), dtype=torch.uint8) for size in sizes]
    with torch.no_grad():
        batched = Inferer()(net, images)
        alone = [Inferer()(net, [image])[0] for image in images]
    assert [tuple(p.shape[1:]) for p in batched] == sizes
    for together, single in zip(batched, alone, strict=True):
        torch.testing.assert_close(together, single)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile_size": 0}, "tile_size"),
        ({"tile_overlap": 1.0}, "tile_overlap"),
        ({"tile_batch_size": 0}, "batch"),
    ],
)
def test_bad_inferer_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Inferer(**kwargs)


@pytest.mark.parametrize(
    ("relatives", "stems"),
    [
        (["a/cat.jpg", "b/cat.jpg"], ["a/cat", "b/cat"]),
        (["cat.jpg", "cat.png", "Cat.bmp"], ["cat", "cat.png", "Cat.bmp"]),
        (["cat.jpg", "cat.prob_pet.jpg"], ["cat", "cat.prob_pet.jpg"]),  # not cat's probability map
        (["x.png", "x.png/y.jpg"], ["x.png", "x.png/y"]),  # a folder x.png: the mask x.png would collide
        (["A.jpg", "a.JPG", "a.jpg"], ["A", "a.JPG", "a.jpg-1"]),
    ],
)
def test_output_names_never_collide(relatives, stems):
    suffixes = output_suffixes(["background", "pet"])
    assert output_stems([Path(r) for r in relatives], suffixes) == [Path(s) for s in stems]


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 257 * 128, 65535]], dtype=np.uint16)).save(tmp_path / "grey16.png")
    rgb = load_image(tmp_path / "grey16.png")
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 128, 255])


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((2, 3, 3), dtype=np.uint8)
    stored[0, 0] = 255  # top-left pixel white
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "rotated.png", exif=exif)
    shown = load_image(tmp_path / "rotated.png")
    assert shown.shape == (3, 2, 3)
    assert shown[0, 1].tolist() == [255, 255, 255]  # the top-left pixel is now top-right
