"""Image features: a column of image file paths → a uint8 [N, C, S, S] tensor, decoded once.

Every image is decoded with Pillow (PNG, JPEG, GIF, BMP, WebP, TIFF; 1-bit, grayscale, palette,
RGB, RGBA — transparency is laid on white), brought to one square size by the ``resize`` policy
and kept as uint8: a quarter of float32's memory, and epochs after the first never decode again.
The per-channel mean and standard deviation are fitted on the train split; scaling, normalising
and augmenting happen in the model on each batch (``models.encoders.image``), so augmentation
touches the train split only and costs torch ops, not Pillow calls.

A missing, non-image or truncated file is never a crash mid-epoch: before the split, those rows
are dropped (counted, the first paths named in the cleaning report); at predict time each such
row gets an error entry and the others are predicted, and nothing about the failure is kept (the
file may be there next time).

A cell may also hold the image's bytes (``bytes``): the server decodes what clients upload without
a path ever reaching this module (``forgeml.serve.images``), or an ``ImageReadError`` it already
met (a path refused outside ``--image-root``), reported as that row's error.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml.features.base import Feature, FitContext, OutputSpec, register

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "La"})
MIN_SIZE, MAX_SIZE = 16, 224
# Uploaded bytes (a server's clients) decode at most this many pixels, counted after JPEG's
# reduced-scale draft: a 1 MB PNG can hold 150 megapixels, half a gigabyte once decoded.
MAX_UPLOAD_PIXELS = 40_000_000
_SHOWN = 5  # unreadable paths named in a message


class ImageReadError(Exception):
    """One file could not be used; the message says why in a few words."""


Source = Any  # Path | bytes | ImageReadError | None: where one row's image comes from


def resolve_path(value: Any, base_dir: str | None) -> Source:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, ImageReadError):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def _open(source: Source) -> Any:
    from PIL import Image

    if source is None:
        raise ImageReadError("no path")
    if isinstance(source, ImageReadError):
        raise source
    if isinstance(source, bytes):
        return Image.open(io.BytesIO(source))
    return Image.open(source)


def read_header(path: Source) -> tuple[int, int, str]:
    """(width, height, mode) without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(path, Path) and not path.is_file():
        raise ImageReadError("file not found")
    try:
        with _open(path) as image:
            return image.width, image.height, image.mode
    except Image.DecompressionBombError:
        raise _too_large() from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError("not an image" if isinstance(exc, UnidentifiedImageError) else f"unreadable ({exc.__class__.__name__})") from None


def _too_large() -> ImageReadError:
    """Pillow's own refusal (a header claiming more than twice ``Image.MAX_IMAGE_PIXELS``) said
    as forgeml's upload cap says it: a picture far too large, not an unreadable file."""
    from PIL import Image

    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000
    return ImageReadError(f"too large to decode (over {limit} megapixels): resize it first")


def decode(path: Source, size: int, channels: int, resize: str) -> np.ndarray:
    """Decode one file (or image bytes) to uint8 [C, size, size]; ``ImageReadError`` if that is impossible."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _open(path) as image:
            image.draft("L" if channels == 1 else "RGB", (size, size))  # JPEG: decode at a reduced scale when much larger
            if isinstance(path, bytes) and image.width * image.height > MAX_UPLOAD_PIXELS:
                raise ImageReadError(f"too large to decode ({image.width}×{image.height} pixels; at most "
                                     f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels): resize it first")
            image.load()  # raises on truncated files
            image = _to_mode(image, channels)
            image = _RESIZERS[resize](image, size)
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError("file not found") from None
    except UnidentifiedImageError:
        raise ImageReadError("not an image") from None
    except Image.DecompressionBombError:
        raise _too_large() from None
    except (OSError, ValueError, SyntaxError) as exc:
        text = str(exc)
        raise ImageReadError("truncated" if "truncated" in text else f"unreadable ({exc.__class__.__name__})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _key(source: Source, row: int) -> str | None:
    """Cache key of a file; bytes and refusals get one per row (never cached, never shared)."""
    if source is None:
        return None
    return str(source) if isinstance(source, Path) else f"\0row {row}"


def _label(source: Source) -> str:
    if source is None:
        return "empty path"
    return "image bytes" if isinstance(source, bytes) else "" if isinstance(source, ImageReadError) else str(source)


def _to_mode(image, channels: int):
    from PIL import Image

    if image.mode == "P" or "A" in image.mode or image.mode == "La":
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    if image.mode in ("I", "I;16", "F"):  # 16-bit and float grayscale: scale into 0..255
        array = np.asarray(image, dtype=np.float64)
        high = array.max() or 1.0
        image = Image.fromarray((array / high * 255).astype(np.uint8))
    return image.convert("L" if channels == 1 else "RGB")


def _resize_crop(image, size: int):
    """Shorter side to ``size``, then the centre square: no distortion, edges lost."""
    from PIL import Image

    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


def _resize_stretch(image, size: int):
    from PIL import Image

    return image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)


def _resize_pad(image, size: int):
    """Longer side to ``size``, centred on black: nothing lost, nothing distorted."""
    from PIL import Image

    scale = size / max(image.size)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    canvas = Image.new(image.mode, (size, size))
    canvas.paste(image, ((size - width) // 2, (size - height) // 2))
    return canvas


_RESIZERS = {"crop": _resize_crop, "stretch": _resize_stretch, "pad": _resize_pad}


def _workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))  # Pillow releases the GIL while decoding


@register
class ImageFeature(Feature):
    type_name = "image"

    def __init__(self, config: Any, state: dict[str, Any] | None = None):
        super().__init__(config, state)
        self._cache: dict[str, np.ndarray] = {}  # decoded at the fitted size; filled in training only
        self._cached_geometry: tuple[int, int] | None = None  # (size, channels) the cached arrays were decoded at
        self._unreadable: dict[str, str] = {}

    # ------------------------------------------------------------------ geometry
    def _choose_geometry(self, paths: list[Source]) -> tuple[int, int]:
        """Size and channels from the files' headers (no pixels, so no statistics leak)."""
        if self.state:
            return self.state["size"], self.state["channels"]
        cfg = self.config
        headers = []
        for path in dict.fromkeys(paths):
            try:
                headers.append(read_header(path))
            except ImageReadError:
                continue
        if not headers:
            from forgeml.errors import DataError

            raise DataError(f"no readable image in column {self.name!r}", where=f"column {self.name!r}",
                            hint="check that the paths exist (relative paths are read from the data file's folder)")
        size = cfg.size or int(np.clip(np.median([min(w, h) for w, h, _ in headers]), MIN_SIZE, MAX_SIZE))
        channels = cfg.channels if cfg.channels != "auto" else (1 if all(mode in GRAY_MODES for *_, mode in headers) else 3)
        return size, int(channels)

    def _paths(self, column: pd.Series) -> list[Source]:
        base_dir = column.attrs.get("base_dir")
        return [resolve_path(value, base_dir) for value in column.tolist()]

    def _decode_all(self, paths: list[Source], size: int, channels: int, *, keep: bool) -> tuple[np.ndarray, dict[int, str]]:
        """Decode every row. ``keep`` (training): decoded arrays and failures are remembered; at
        predict time neither is, so a server neither grows nor refuses a file forever once fixed."""
        out = np.zeros((len(paths), channels, size, size), dtype=np.uint8)
        errors: dict[int, str] = {}
        unreadable = self._unreadable if keep else {}
        keys = [_key(source, row) for row, source in enumerate(paths)]
        sources = {key: source for key, source in zip(keys, paths) if key is not None}
        todo = sorted(key for key in sources if key not in self._cache and key not in unreadable)
        decoded: dict[str, np.ndarray] = {}
        if todo:
            def one(key: str) -> tuple[str, np.ndarray | str]:
                try:
                    return key, decode(sources[key], size, channels, self.config.resize)
                except ImageReadError as exc:
                    return key, str(exc)

            with ThreadPoolExecutor(min(_workers(), len(todo))) as pool:
                for key, result in pool.map(one, todo):
                    if isinstance(result, str):
                        unreadable[key] = result
                    else:
                        decoded[key] = result
            if keep:
                self._cache.update(decoded)
        for row, (key, source) in enumerate(zip(keys, paths)):
            array = self._cache.get(key) if key is not None else None
            if array is None and key is not None:
                array = decoded.get(key)
            if array is None:
                reason = unreadable.get(key, "no path") if key else "no path"
                errors[row] = f"{_label(source)}: {reason}" if _label(source) else reason
            else:
                out[row] = array
        return out, errors

    # ------------------------------------------------------------------ Feature
    def missing_mask(self, column: pd.Series) -> np.ndarray:
        """Rows whose file is missing, not an image or truncated (decoded here once, then cached).

        This runs on every row before the split, so the geometry used here is provisional: ``fit``
        chooses the real one on the train split and decodes again only if it differs."""
        paths = self._paths(column)
        self._cached_geometry = self._choose_geometry(paths)
        _, errors = self._decode_all(paths, *self._cached_geometry, keep=True)
        mask = np.zeros(len(column), dtype=bool)
        mask[list(errors)] = True
        return mask

    def fit(self, column: pd.Series, context: FitContext) -> None:
        cfg = self.config
        paths = self._paths(column)
        size, channels = self._choose_geometry(paths)  # the train split's files: test images never choose
        if self._cached_geometry not in (None, (size, channels)):
            self._cache.clear()  # decoded at the provisional geometry of all rows
        self._cached_geometry = (size, channels)
        images, errors = self._decode_all(paths, size, channels, keep=True)
        good = np.setdiff1d(np.arange(len(paths)), list(errors))
        pixels = images[good].astype(np.float32) / 255.0  # (N, C, S, S)
        if len(good) == 0:
            from forgeml.errors import DataError

            raise DataError(f"no readable image in the train split of column {self.name!r}", where=f"column {self.name!r}",
                            hint="check the image paths")
        mean = pixels.mean(axis=(0, 2, 3))
        std = np.maximum(pixels.std(axis=(0, 2, 3)), 1e-3)
        augment = cfg.augment == "on" or (cfg.augment == "auto" and channels == 3 and size >= 32)
        self.state = {
            "size": int(size),
            "channels": int(channels),
            "mean": [round(float(v), 6) for v in mean],
            "std": [round(float(v), 6) for v in std],
            "augment": {"crop_scale": cfg.crop_scale, "flip": cfg.flip, "rotation": cfg.rotation,
                        "color_jitter": cfg.color_jitter} if augment else None,
        }

    def transform_rows(self, column: pd.Series, *, strict: bool = False) -> tuple[np.ndarray, dict[int, str]]:
        # At predict time (strict) nothing is cached: a server must not grow with every request.
        return self._decode_all(self._paths(column), self.state["size"], self.state["channels"], keep=not strict)

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        return self.transform_rows(column, strict=strict)[0]

    def notes(self) -> list[str]:
        if not self._unreadable:
            return []
        shown = "; ".join(f"{path} ({why})" for path, why in list(self._unreadable.items())[:_SHOWN])
        more = f" and {len(self._unreadable) - _SHOWN} more" if len(self._unreadable) > _SHOWN else ""
        return [f"skipped {len(self._unreadable)} unreadable image file(s) in {self.name!r}: {shown}{more}"]

    def output_spec(self) -> OutputSpec:
        s = self.state
        return OutputSpec("images", width=s["size"], extra={"channels": s["channels"], "mean": s["mean"], "std": s["std"], "augment": s["augment"]})

