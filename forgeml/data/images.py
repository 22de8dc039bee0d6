"""An image folder as a table: ``root/<class>/<file>`` rows of (image path, label).

This is the ImageFolder layout of torchvision and Keras' ``image_dataset_from_directory``: one
sub-folder per class. Files directly in ``root`` become rows without a label (a folder of new
images to predict). Paths are stored relative to ``root`` and ``root`` is kept in the frame's
``attrs["base_dir"]``, the same convention as a CSV whose image column holds relative paths.

Which file names are images is decided here, where files are read, for the folder reader, the
type inference of a path column (``looks_like_image_paths``), the image feature and the server.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from forgeml.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
IMAGE_COLUMN, LABEL_COLUMN = "image", "label"


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_folder_frame(root: Path) -> pd.DataFrame:
    """Columns ``image`` (path relative to ``root``) and ``label`` (the sub-folder's name)."""
    rows: list[tuple[str, str | None]] = []
    notes: list[str] = []
    skipped = 0
    empty: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            files = sorted(p for p in entry.rglob("*") if p.is_file())
            images = [p for p in files if _is_image(p)]
            skipped += len(files) - len(images)
            if not images:
                empty.append(entry.name)
            rows.extend((p.relative_to(root).as_posix(), entry.name) for p in images)
        elif _is_image(entry):
            rows.append((entry.name, None))
        elif entry.is_file():
            skipped += 1
    if not rows:
        raise DataError("this is a folder, not a file, and it holds no image files", where=str(root),
                        hint="give a data file, or a folder with one sub-folder of .png/.jpg images per class (ImageFolder layout)")
    if empty:
        notes.append(f"class folder(s) without images ignored: {', '.join(empty[:10])}")
    if skipped:
        notes.append(f"ignored {skipped} file(s) that are not images (by extension)")
    frame = pd.DataFrame(rows, columns=[IMAGE_COLUMN, LABEL_COLUMN])
    if frame[LABEL_COLUMN].isna().all():
        frame = frame.drop(columns=[LABEL_COLUMN])
    frame[IMAGE_COLUMN] = frame[IMAGE_COLUMN].astype(object)
    frame.attrs["base_dir"] = str(root.resolve())
    frame.attrs["notes"] = notes
    return frame


def looks_like_image_paths(values: pd.Series) -> bool:
    """At least 90 % of the (sampled, present) values end in an image file suffix."""
    text = values.dropna().astype(str).str.strip().str.lower()
    if text.empty:
        return False
    suffix = text.str.extract(r"(\.[a-z]+)$", expand=False)
    return bool(suffix.isin(IMAGE_SUFFIXES).mean() >= 0.9)
