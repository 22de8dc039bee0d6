"""Image features at serve time: clients send the image's bytes, not a path on the server.

By default an image field takes base64 bytes (a ``data:image/png;base64,...`` URL too), in JSON
and in CSV cells alike, and a CSV upload may carry the image files beside it (multipart parts
``images``, named by the cells); the server never opens a path a client names. ``forgeml serve
--image-root DIR`` also accepts paths (``{"path": "cats/1.png"}`` in JSON, the cell itself in a
CSV upload), resolved inside DIR: regular files only (a FIFO or a tty would wedge the scoring
thread, so they are opened non-blocking and refused), no escape by ``..`` or a symlink (checked
on the opened file itself, so a link swapped in after the check does not help), at most
``MAX_IMAGE_BYTES``. Every refusal of a path says the same words, so an answer never tells
whether a file exists outside the root. Nothing is cached: a file fixed or added is read next time.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path
from typing import Any

from forgeml.data.images import IMAGE_SUFFIXES
from forgeml.features.image import ImageReadError

MAX_IMAGE_BYTES = 32 << 20
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*;base64,", re.ASCII)
_NO_ROOT = "image paths are not accepted by this server: send the image's bytes as base64 (start it with --image-root DIR to allow paths under DIR)"


class ImagePath(str):
    """A path a client named in JSON (``{"path": ...}``): read under ``--image-root`` later, off the event loop."""


def decode_base64(text: str) -> bytes:
    """Image bytes from base64 text or a data URL; ``ValueError`` saying what is expected."""
    body = _DATA_URL.sub("", text.strip(), count=1)
    try:
        data = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("should be the image's bytes in base64 (or a data: URL); a path is accepted as "
                         "{\"path\": ...} when the server runs with --image-root") from None
    if not data:
        raise ValueError("should be the image's bytes in base64, not empty")
    return data


class ImageInputs:
    """Turns what clients send for the bundle's image features into bytes (or a row's error)."""

    def __init__(self, names: list[str], root: Path | None):
        self.names = names
        self.root = root.resolve() if root is not None else None

    def resolve_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """JSON rows: ``ImagePath`` values read under the root (bytes), or a row's ``ImageReadError``."""
        out = []
        for row in rows:
            if any(isinstance(row.get(name), ImagePath) for name in self.names):
                row = {**row, **{name: self.read(row[name]) for name in self.names if isinstance(row.get(name), ImagePath)}}
            out.append(row)
        return out

    def resolve_cell(self, value: Any, uploaded: dict[str, bytes] | None = None) -> Any:
        """A CSV cell: the file uploaded with the CSV under that name, else a path under the root
        when there is one, else base64; bytes or the row's error."""
        if not isinstance(value, str) or not value.strip():
            return None
        if uploaded and value.strip() in uploaded:
            return uploaded[value.strip()]
        if self.root is not None:
            return self.read(value)
        try:
            return decode_base64(value)
        except ValueError:
            looks_like_path = Path(value.strip()).suffix.lower() in IMAGE_SUFFIXES
            return ImageReadError(_NO_ROOT if looks_like_path else "not an image's bytes in base64 (nor a data: URL)")

    def read(self, relative: str) -> bytes | ImageReadError:
        if self.root is None:
            return ImageReadError(_NO_ROOT)
        try:
            return read_under_root(self.root, relative)
        except ImageReadError as exc:
            return exc


def read_under_root(root: Path, relative: str) -> bytes:
    """The bytes of ``root/relative`` if it is a regular file inside ``root`` (``root`` resolved)."""
    hidden = ImageReadError(f"no image file {relative[:200]!r} under the image root")  # the same words for every refusal
    text = relative.strip()
    if not text or "\0" in text or Path(text).is_absolute():
        raise hidden
    candidate = (root / text).resolve()
    if not candidate.is_relative_to(root):
        raise hidden
    try:
        descriptor = os.open(candidate, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise hidden from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or not _opened_inside(descriptor, root):
        os.close(descriptor)
        raise hidden
    with os.fdopen(descriptor, "rb") as handle:
        if status.st_size > MAX_IMAGE_BYTES:
            raise ImageReadError(f"image file {text[:200]!r} is over {MAX_IMAGE_BYTES >> 20} MiB")
        return handle.read(MAX_IMAGE_BYTES + 1)[:MAX_IMAGE_BYTES]


def _opened_inside(descriptor: int, root: Path) -> bool:
    """Where the opened file really is (Linux: /proc/self/fd), so a symlink swapped in between
    the check and the open cannot lead outside the root. Elsewhere the resolve check stands."""
    link = f"/proc/self/fd/{descriptor}"
    if not os.path.exists(link):
        return True
    return Path(os.readlink(link)).is_relative_to(root)
