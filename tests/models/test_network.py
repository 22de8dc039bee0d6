"""The network: encoders per input, combiners, padding invariance, train-only augmentation,
pretrained freezing and learning-rate groups."""
from __future__ import annotations

import pytest
import torch

from forgeml.models.networks import MLPConfig, PretrainedConfig, TextEncoderConfig, ImageEncoderConfig
from forgeml.features.featureset import ImageInput, InputSpec, TokenInput
from forgeml.models.network import FusionNet
from forgeml.train.optim import build_optimizer
from forgeml.config import TrainConfig

LENGTH = 12


def spec(text=True, image=True, image_size=16, channels=1, augment=None):
    return InputSpec(
        dense_columns=["a", "b", "c"], dense_groups=[("a", 1), ("date", 2)],
        codes=[("city", 5, 3)],
        tokens=[TokenInput("review", 50, 8, LENGTH)] if text else [],
        images=[ImageInput("photo", channels, image_size, (0.5,) * channels, (0.25,) * channels, augment)] if image else [],
    )


def batch(rows=6, text=True, image=True, image_size=16, channels=1):
    torch.manual_seed(0)
    tokens = torch.randint(2, 50, (rows, LENGTH))
    tokens[:, 7:] = 0  # right padding
    tokens[1] = 0  # an empty text
    out = {"dense": torch.randn(rows, 3), "codes": torch.randint(0, 5, (rows, 1))}
    if text:
        out["tokens.review"] = tokens
    if image:
        out["images.photo"] = torch.randint(0, 256, (rows, channels, image_size, image_size), dtype=torch.uint8)
    return out


@pytest.mark.parametrize("text_type", ["bag", "lstm", "gru", "transformer"])
@pytest.mark.parametrize("combiner", ["concat", "transformer"])
def test_every_text_encoder_and_combiner_runs_and_ignores_padding(text_type, combiner):
    cfg = MLPConfig(combiner=combiner, text=TextEncoderConfig(type=text_type, hidden_size=16, heads=2), image=ImageEncoderConfig(channels=[4, 8], dense_size=16))
    net = FusionNet(spec(), 3, cfg).eval()
    inputs = batch()
    out = net(inputs)
    assert out.shape == (6, 3) and torch.isfinite(out).all()  # the all-padding row too
    shorter = dict(inputs, **{"tokens.review": inputs["tokens.review"][:, :9]})  # less padding, same text
    torch.testing.assert_close(net(shorter), out)
    loss = net.train()(inputs).sum()
    loss.backward()
    assert all(p.grad is not None for n, p in net.named_parameters() if n.startswith("text.0.") and "positions" not in n)


@pytest.mark.parametrize("image_type, size", [("simple_cnn", 28), ("resnet", 32), ("flatten", 16), ("simple_cnn", 100)])
def test_image_encoders(image_type, size):
    cfg = MLPConfig(image=ImageEncoderConfig(type=image_type, channels=[8, 16], width=8, blocks=[1, 1]))
    net = FusionNet(spec(text=False, image_size=size, channels=3), 4, cfg).eval()
    out = net(batch(text=False, image_size=size, channels=3))
    assert out.shape == (6, 4)
    if image_type == "simple_cnn":
        dense = net.images[0].body.head[1]
        assert dense.in_features == 16 * min(size // 4, 7) ** 2  # flattened map is at most 7×7
    assert net.predict_batch_size == 256


def test_augmentation_only_in_training():
    augment = {"crop_scale": 0.6, "flip": True, "rotation": 20.0, "color_jitter": 0.3}
    net = FusionNet(spec(text=False, channels=3, augment=augment), 2, MLPConfig())
    preprocess = net.images[0].preprocess
    images = batch(text=False, channels=3)["images.photo"]
    preprocess.eval()
    torch.testing.assert_close(preprocess(images), preprocess(images))
    expected = (images.float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(preprocess(images), expected)
    preprocess.train()
    torch.manual_seed(1)
    first = preprocess(images)
    assert first.shape == images.shape and not torch.allclose(first, expected)
    assert not torch.allclose(first, preprocess(images))  # a fresh draw per batch


def test_tabular_only_is_the_plain_mlp():
    net = FusionNet(spec(text=False, image=False), 2, MLPConfig(hidden_size=16))
    names = [n for n, _ in net.named_parameters()]
    assert names[0] == "embeddings.0.weight" and names[-1] == "head.bias"
    assert net.combiner.blocks[0].layers[0].in_features == 3 + 3 and net.predict_batch_size == 4096


def test_pretrained_encoder_freezing_and_lower_learning_rate(minilm_dir):
    import json

    hf_config = json.loads((minilm_dir / "config.json").read_text())
    tokens = [TokenInput("review", 30522, 32, 16, 0, hf_config)]
    train = TrainConfig(learning_rate=1e-3)
    cfg = PretrainedConfig(text=TextEncoderConfig(type="pretrained", checkpoint=str(minilm_dir), freeze_layers=4, lr_scale=0.1))
    net = FusionNet(InputSpec(tokens=tokens), 2, cfg)
    encoder = net.text[0].model
    assert not any(p.requires_grad for p in encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in encoder.encoder.layer[3].parameters())
    assert all(p.requires_grad for p in encoder.encoder.layer[4].parameters())
    rates = sorted({group["lr"] for group in build_optimizer(net, train).param_groups if group["params"]})
    assert rates == [pytest.approx(1e-4), pytest.approx(1e-3)]
    frozen = FusionNet(InputSpec(tokens=tokens), 2, PretrainedConfig(text=TextEncoderConfig(type="pretrained", checkpoint=str(minilm_dir), freeze=True))).train()
    assert not frozen.text[0].model.training  # dropout off inside a frozen encoder
    trainable = [n for n, p in frozen.named_parameters() if p.requires_grad]
    assert trainable and all(not n.startswith("text.") for n in trainable)
    ids = torch.tensor([[101, 2307, 4031, 2204, 2051, 102], [101, 2307, 102, 0, 0, 0]])
    row = lambda t: {"dense": torch.zeros(len(t), 0), "codes": torch.zeros(len(t), 0, dtype=torch.long), "tokens.review": t}  # noqa: E731
    both = frozen.eval()(row(ids))  # two lengths: two buckets, each cut to its own length
    assert both.shape == (2, 2)
    torch.testing.assert_close(both[1:], frozen(row(ids[1:, :3])), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(both[:1], frozen(row(ids[:1])), atol=1e-5, rtol=1e-4)
