"""Repeated rows are dropped as copies only where the columns could tell every row apart; on a
table of a few low-cardinality columns they are the data (the Titanic's sex, age and class)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from forgeml.config import SplitConfig
from forgeml.data.clean import CleaningReport, drop_duplicates
from forgeml.data.repeats import possible_rows, repeats_are_natural
from forgeml.data.split import split_frame


def _passengers(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["male", "female"], rows)
    klass = rng.choice(["1st", "2nd", "3rd"], rows)
    age = rng.choice([2, 10, 20, 30, 40, 50, 60], rows).astype(float)
    survived = np.where((sex == "female") ^ (rng.random(rows) < 0.2), "yes", "no")
    return pd.DataFrame({"sex": sex, "age": age, "class": klass, "survived": survived})


def test_few_possible_rows_make_repeats_natural_and_an_identifying_column_makes_them_copies() -> None:
    passengers = _passengers()
    assert round(possible_rows(passengers)) == 2 * 7 * 3 * 2 and repeats_are_natural(passengers)
    measured = passengers.assign(fare=np.random.default_rng(1).normal(size=len(passengers)))  # a value per row
    assert not repeats_are_natural(measured)
    many = pd.DataFrame({f"c{i}": np.random.default_rng(i).integers(0, 20, 600) for i in range(5)})  # 3.2M possible rows
    assert not repeats_are_natural(many)


def test_natural_repeats_stay_with_a_note_and_copies_go() -> None:
    passengers = _passengers()
    report = CleaningReport(rows_in=len(passengers))
    kept = drop_duplicates(passengers, report, natural_kept=True)
    assert len(kept) == len(passengers) and report.duplicates_dropped == 0
    assert report.messages[0].startswith("kept ") and "repeated rows are observations" in report.messages[0]
    forced = drop_duplicates(passengers, CleaningReport(rows_in=len(passengers)), natural_kept=False)  # clean.duplicates: true
    assert len(forced) == len(passengers.drop_duplicates())
    copies = pd.concat([passengers.assign(id=range(600)), passengers.assign(id=range(600)).head(30)])
    report = CleaningReport(rows_in=len(copies))
    assert len(drop_duplicates(copies, report, natural_kept=True)) == 600 and report.duplicates_dropped == 30


def test_training_rows_equal_to_test_rows_stay_when_repeats_are_natural() -> None:
    passengers = _passengers(800)
    train, test = passengers.iloc[:600], passengers.iloc[600:].copy()
    result = split_frame(train, ["survived"], "binary", SplitConfig(train=0.85, validation=0.0, test=0.15), test_df=test)
    assert len(result["train"]) == 600
    assert result.messages[0].startswith("kept ") and "equal to rows of the test data" in result.messages[0]
