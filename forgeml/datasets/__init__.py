"""Data sets shipped inside the package, so the demo and tests need nothing from outside."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class BundledDataset:
    path: Path
    target: str
    description: str


DEMO = BundledDataset(
    path=HERE / "penguins.csv",
    target="Species",
    description=(
        "344 Palmer Archipelago penguins, raw LTER export: numbers, categories, dates, free-text "
        "comments, ids and missing values (Gorman, Williams & Fraser 2014, CC0; via palmerpenguins)"
    ),
)
