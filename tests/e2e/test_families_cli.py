"""`forgeml train … --model catboost | linear` through the real CLI: the registry's families are the
choices, the run's bundle predicts, and a text column or an unknown family gets one line."""
from __future__ import annotations

import importlib.util
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _orders(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "lyon", "nice", "lille", "metz"], rows)
    amount = rng.normal(100, 20, rows).round(2)
    return pd.DataFrame({"city": city, "amount": amount,
                         "returned": np.where(np.isin(city, ["paris", "nice"]) ^ (amount > 140), "yes", "no")})


FAMILIES = {"catboost": (["--set", "model.iterations=60"], "catboost_model_0.cbm"), "linear": ([], "linear.safetensors")}
HAS_CATBOOST = importlib.util.find_spec("catboost") is not None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("families_cli")
    _orders().to_csv(folder / "orders.csv", index=False)
    _orders(rows=20, seed=1).drop(columns=["returned"]).to_csv(folder / "new.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def trainings(workdir, cli, cli_pool) -> dict[str, Future]:
    """Both trainings at once, in the background (each is mostly the CLI's start-up)."""
    return {family: cli_pool.submit(cli, "train", "orders.csv", "--target", "returned", "--model", family, *settings, "--threads", "1",
                                    "--set", "train.progress=false", "--runs-dir", "runs", "--name", family, cwd=workdir)
            for family, (settings, _) in FAMILIES.items() if family != "catboost" or HAS_CATBOOST}


@pytest.mark.parametrize("family", [pytest.param("catboost", marks=pytest.mark.skipif(not HAS_CATBOOST, reason="the catboost extra")), "linear"])
def test_train_then_predict(workdir, cli, trainings, family):
    done = trainings[family].result()
    assert done.returncode == 0, done
    bundle = workdir / "runs" / done.run_id / "bundle"
    assert (bundle / FAMILIES[family][1]).is_file()
    predicted = cli("predict", done.run_id, "new.csv", "-o", f"{family}.csv", "--runs-dir", "runs", cwd=workdir)
    assert predicted.returncode == 0, predicted
    out = pd.read_csv(workdir / f"{family}.csv")
    assert len(out) == 20 and set(out["returned_prediction"]) <= {"yes", "no"}


def test_help_lists_the_registry_and_a_wrong_family_names_them(workdir, cli):
    from forgeml.models import families

    help_text = " ".join(cli("train", "--help", cwd=workdir).stdout.split())
    assert all(name in help_text for name in families.FAMILIES), help_text
    done = cli("train", "orders.csv", "--target", "returned", "--model", "xgboost", "--runs-dir", "runs", cwd=workdir)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "'linear'" in done.stderr, done
