"""Image encoders: uint8 (B, C, S, S) → (B, width), with scaling, normalisation and train-time
augmentation done here, on whole batches, by torch ops.

Augmentation (random resized crop, horizontal flip, rotation — composed into one affine warp per
image — and brightness/contrast/saturation jitter) runs only in training mode, like Keras'
preprocessing layers, so validation, test and prediction always see the plain image.

- ``simple_cnn``: the founding documents' SimpleCNN, made runnable: conv 3×3 → batch norm →
  ReLU → max-pool 2 per block, then a dense layer (the feature map is first average-pooled to
  at most 7×7, which keeps the dense layer small for 224-pixel inputs);
- ``resnet``: a small ResNet (He et al. 2016) of basic blocks, configurable depth and width,
  global average pooling;
- ``flatten``: the pixels themselves (the Keras dense network on flattened MNIST).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from forgeml.features.featureset import ImageInput


class ImagePreprocess(nn.Module):
    """uint8 → float in [0, 1] → (augmented in training) → normalised by the train split's statistics."""

    def __init__(self, spec: ImageInput):
        super().__init__()
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.augment = spec.augment

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255.0)  # (B, C, S, S)
        if self.training and self.augment:
            x = augment(x, **self.augment)
        return (x - self.mean) / self.std


def augment(x: torch.Tensor, *, crop_scale: float, flip: bool, rotation: float, color_jitter: float) -> torch.Tensor:
    """Random resized crop + flip + rotation as one affine warp per image, then colour jitter."""
    B, C = x.shape[:2]
    u = lambda low, high: torch.empty(B).uniform_(low, high)  # noqa: E731
    area = u(crop_scale, 1.0)
    ratio = torch.exp(u(math.log(3 / 4), math.log(4 / 3)))
    sx, sy = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)  # crop size, as a share of the side
    tx, ty = (1 - sx) * u(-1.0, 1.0), (1 - sy) * u(-1.0, 1.0)  # the crop stays inside the image
    if flip:
        sx = sx * torch.where(torch.rand(B) < 0.5, -1.0, 1.0)
    angle = u(-rotation, rotation) * (math.pi / 180) if rotation else torch.zeros(B)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([sx * cos, -sy * sin, tx], 1), torch.stack([sx * sin, sy * cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if color_jitter:
        shape = (B, 1, 1, 1)
        x = x * torch.empty(shape).uniform_(1 - color_jitter, 1 + color_jitter)  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * torch.empty(shape).uniform_(1 - color_jitter, 1 + color_jitter) + mean  # contrast
        if C == 3:
            gray = x.mean(dim=1, keepdim=True)
            x = (x - gray) * torch.empty(shape).uniform_(1 - color_jitter, 1 + color_jitter) + gray  # saturation
        x = x.clamp_(0.0, 1.0)
    return x


class SimpleCNN(nn.Module):
    def __init__(self, spec: ImageInput, cfg: Any):
        super().__init__()
        layers: list[nn.Module] = []
        channels, side = spec.channels, spec.size
        for out in cfg.channels:
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels, side = out, side // 2
        if side > 7:
            layers.append(nn.AdaptiveAvgPool2d(7))
            side = 7
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, cfg.dense_size), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))
        self.width = cfg.dense_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, dense_size)


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Identity() if stride == 1 and channels_in == channels_out else nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False), nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x), inplace=True)


class ResNet(nn.Module):
    def __init__(self, spec: ImageInput, cfg: Any):
        super().__init__()
        width = cfg.width
        stem_stride = 2 if spec.size >= 96 else 1  # small images keep their resolution
        layers: list[nn.Module] = [nn.Conv2d(spec.channels, width, 3, stride=stem_stride, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        channels = width
        for stage, blocks in enumerate(cfg.blocks):
            out = width * 2**stage
            for index in range(blocks):
                layers.append(BasicBlock(channels, out, 2 if stage > 0 and index == 0 else 1))
                channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout))
        self.width = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, channels of the last stage)


class Flatten(nn.Module):
    def __init__(self, spec: ImageInput, cfg: Any):
        super().__init__()
        self.width = spec.channels * spec.size * spec.size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


IMAGE_ENCODERS: dict[str, Callable[[ImageInput, Any], nn.Module]] = {"simple_cnn": SimpleCNN, "resnet": ResNet, "flatten": Flatten}


class ImageEncoder(nn.Module):
    def __init__(self, spec: ImageInput, cfg: Any):
        super().__init__()
        self.preprocess = ImagePreprocess(spec)
        self.body = IMAGE_ENCODERS[cfg.type](spec, cfg)
        self.width = self.body.width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.preprocess(images))
