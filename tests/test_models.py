"""The U-Net: shapes for any input size, gradients, the skip ablation by structure, bad arguments."""

from __future__ import annotations

import itertools

import pytest
import torch

from unetskip.models import ConvBlock, DecoderStage, UNet

SIZES = [(1, 1), (37, 53), (64, 64), (17, 100)]


@pytest.mark.parametrize(
    ("depth", "skip_connections", "residual", "stem_stride", "size"),
    list(itertools.product([1, 2, 4], [True, False], [True, False], [1, 2], SIZES)),
)
def test_output_matches_input_size(depth, skip_connections, residual, stem_stride, size):
    net = UNet(
        num_classes=3,
        base_channels=4,
        depth=depth,
        residual=residual,
        skip_connections=skip_connections,
        stem_stride=stem_stride,
    ).eval()
    with torch.no_grad():
        logits = net(torch.randn(2, 3, *size))
    assert logits.shape == (2, 3, *size)
    assert torch.isfinite(logits).all()


def test_large_odd_input_size():
    net = UNet(base_channels=2, depth=3).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 375, 500)).shape == (1, 2, 375, 500)


@pytest.mark.parametrize(
    ("skip_connections", "residual", "stem_stride"), itertools.product([True, False], [True, False], [1, 2])
)
def test_every_parameter_gets_a_finite_gradient(skip_connections, residual, stem_stride):
    net = UNet(
        base_channels=4,
        depth=3,
        blocks_per_stage=2,
        residual=residual,
        skip_connections=skip_connections,
        stem_stride=stem_stride,
    )
    net(torch.randn(2, 3, 37, 41)).logsumexp(dim=1).mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("stem_stride", [1, 2])
def test_stage_resolutions_follow_the_stem_stride(stem_stride):
    net = UNet(base_channels=4, depth=3, stem_stride=stem_stride).eval()
    shapes = []
    for stage in [*net.encoder, *net.decoder]:
        stage.register_forward_hook(lambda module, args, out: shapes.append(tuple(out.shape[1:])))
    with torch.no_grad():
        logits = net(torch.randn(1, 3, 60, 90))  # padded to 64 x 96, a multiple of 8 (or 16)
    assert logits.shape == (1, 2, 60, 90)
    height, width = 64 // stem_stride, 96 // stem_stride  # the resolution of stage 0
    encoder = [(4 * 2**i, height // 2**i, width // 2**i) for i in range(4)]
    assert shapes == encoder + encoder[:-1][::-1]  # the decoder goes back up to stage 0's resolution
    # Stride 2 keeps the parameter count: only the stem's convolution stride changes.
    assert count(net) == count(UNet(base_channels=4, depth=3))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_no_skip_decoder_is_smaller_and_takes_no_encoder_input():
    with_skips = UNet(base_channels=8, depth=3)
    without = UNet(base_channels=8, depth=3, skip_connections=False)
    assert count(without.decoder) < count(with_skips.decoder)
    assert count(without.encoder) == count(with_skips.encoder)
    for stage, reference in zip(without.decoder, with_skips.decoder, strict=True):
        assert stage.skip_channels == 0
        first = stage.blocks[0]
        # Only the upsampled channels enter the first conv: no weights for a missing skip.
        assert first.conv1.in_channels == stage.upsample.out_channels
        assert reference.blocks[0].conv1.in_channels == 2 * reference.upsample.out_channels
        with pytest.raises(ValueError, match="skip_channels=0"):
            stage(
                torch.randn(1, stage.upsample.in_channels, 2, 2),
                torch.randn(1, stage.upsample.out_channels, 4, 4),
            )


def test_no_skip_decoder_stages_receive_no_encoder_features():
    net = UNet(base_channels=4, depth=2, skip_connections=False).eval()
    skips = []
    for stage in net.decoder:
        stage.register_forward_hook(lambda module, inputs, output: skips.append(inputs[1]))
    with torch.no_grad():
        net(torch.randn(1, 3, 16, 16))
    assert skips == [None, None]


def test_residual_false_builds_plain_blocks_of_the_same_shape():
    residual = UNet(base_channels=8, depth=2)
    plain = UNet(base_channels=8, depth=2, residual=False)
    blocks = [m for m in plain.modules() if isinstance(m, ConvBlock)]
    assert blocks and all(block.shortcut is None for block in blocks)
    assert any(
        isinstance(m.shortcut, torch.nn.Sequential) for m in residual.modules() if isinstance(m, ConvBlock)
    )
    x = torch.randn(1, 3, 20, 20)
    assert residual(x).shape == plain(x).shape


def test_conv_block_projection_only_when_shape_changes():
    assert isinstance(ConvBlock(8, 8).shortcut, torch.nn.Identity)
    assert isinstance(ConvBlock(8, 16).shortcut, torch.nn.Sequential)
    assert isinstance(ConvBlock(8, 8, stride=2).shortcut, torch.nn.Sequential)
    assert ConvBlock(8, 16, stride=2)(torch.randn(1, 8, 10, 10)).shape == (1, 16, 5, 5)


def test_zero_init_makes_residual_block_its_shortcut():
    block = ConvBlock(4, 4)
    block.zero_init_last()
    block.eval()
    x = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(x))
    net = UNet(base_channels=4, depth=2, zero_init_residual=True)
    blocks = [m for m in net.modules() if isinstance(m, ConvBlock)]
    assert all((b.norm2.weight == 0).all() for b in blocks)


def test_decoder_stage_shapes():
    stage = DecoderStage(16, 8, 8, num_blocks=1, residual=True)
    out = stage(torch.randn(2, 16, 5, 7), torch.randn(2, 8, 10, 14))
    assert out.shape == (2, 8, 10, 14)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 0}, "depth"),
        ({"base_channels": 0}, "base_channels"),
        ({"num_classes": -1}, "num_classes"),
        ({"in_channels": 0}, "in_channels"),
        ({"blocks_per_stage": 0}, "blocks_per_stage"),
        ({"depth": 2.5}, "depth"),
        ({"residual": False, "zero_init_residual": True}, "zero_init_residual"),
        ({"stem_stride": 3}, "stem_stride"),
        ({"stem_stride": True}, "stem_stride"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(**kwargs)
