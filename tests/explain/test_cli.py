"""``forgeml explain`` through the real CLI: a LightGBM run on a generated table (explained by run
id, files beside the data), a network with text (--top), the n-gram model on real Chinese
reviews (character highlights), and bad input — each a result or one ``error:`` line, the input
files untouched."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"
QUIET = ["--set", "train.progress=false", "--threads", "1"]


@pytest.fixture(scope="module")
def table_run(tmp_path_factory, cli, make_mixed):
    """(workdir, run id): LightGBM on a generated table, noise column included."""
    import numpy as np

    workdir = tmp_path_factory.mktemp("explain_table")
    frame = make_mixed(200).drop(columns=["price", "size", "review"])
    frame["noise"] = np.random.default_rng(5).normal(size=len(frame)).round(3)
    frame.to_csv(workdir / "table.csv", index=False)
    result = cli("train", "table.csv", "--target", "label", "--model", "gbm", "--set", "model.num_boost_round=40", *QUIET,
                 "--runs-dir", "runs", cwd=workdir)
    assert result.returncode == 0, result
    return workdir, result.run_id


def one_error_line(result) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("data:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    return lines[0]


def test_explain_rows_of_a_table_by_run_id_writes_json_and_page_beside_the_data(table_run, cli):
    workdir, run_id = table_run
    before = (workdir / "table.csv").read_bytes()
    bundle = {path: path.read_bytes() for path in (workdir / "runs" / run_id / "bundle").rglob("*") if path.is_file()}
    result = cli("explain", run_id[:15], "table.csv", "--rows", "0,5,9", "--runs-dir", "runs", cwd=workdir)
    assert result.returncode == 0, result
    folder = workdir / "table_explanations"
    assert str(folder.name) in result.stdout
    answer = json.loads((folder / "explanations.json").read_text(encoding="utf-8"))
    assert [row["row"] for row in answer["rows"]] == [0, 5, 9]
    assert "pred_contrib" in answer["method"] and answer["completeness_gap"] < 1e-6
    assert {item["feature"] for item in answer["importance"]} == {"age", "income", "city", "signup", "noise"}
    page = (folder / "explain.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 4  # global importance + one chart per row
    assert (workdir / "table.csv").read_bytes() == before
    assert {path: path.read_bytes() for path in (workdir / "runs" / run_id / "bundle").rglob("*") if path.is_file()} == bundle
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*"))  # written atomically: no leftovers


def test_a_network_with_text_explains_the_top_rows_with_token_highlights(tmp_path, cli, make_mixed):
    frame = make_mixed(120).drop(columns=["price", "size"])
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    trained = cli("train", "mixed.csv", "--target", "label", "--model", "mlp", "--set", "train.epochs=2",
                  "--set", "train.bagging_folds=1", *QUIET, "--runs-dir", "runs", cwd=tmp_path)
    assert trained.returncode == 0, trained
    result = cli("explain", f"runs/{trained.run_id}/bundle", "mixed.csv", "--top", "3", "-o", "out", cwd=tmp_path)
    assert result.returncode == 0, result
    answer = json.loads((tmp_path / "out" / "explanations.json").read_text(encoding="utf-8"))
    assert answer["rows_explained"] == 120 and len(answer["rows"]) == 3
    assert "integrated gradients" in answer["method"] and answer["completeness_gap"] < 0.05
    totals = [sum(abs(v) for v in row["contributions"].values()) for row in answer["rows"]]
    assert totals == sorted(totals, reverse=True)  # the rows with the most attribution
    assert all(row["tokens"]["review"] for row in answer["rows"])
    assert '<div class="tokens">' in (tmp_path / "out" / "explain.html").read_text(encoding="utf-8")


def test_chinese_reviews_get_character_highlights(tmp_path, cli):
    (tmp_path / "reviews.csv").write_bytes((FIXTURES / "reviews_zh_300.csv").read_bytes())
    trained = cli("train", "reviews.csv", "--target", "sentiment", "--model", "ngram", *QUIET, "--runs-dir", "runs", cwd=tmp_path)
    assert trained.returncode == 0, trained
    result = cli("explain", trained.run_id, "reviews.csv", "--rows", "0-2", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 0, result
    answer = json.loads((tmp_path / "reviews_explanations" / "explanations.json").read_text(encoding="utf-8"))
    first = answer["rows"][0]
    tokens = first["tokens"]["review"]
    assert "".join(token for token, _ in tokens[:4]) == "地理位置"  # one token per Chinese character
    assert sum(score for _, score in tokens) == pytest.approx(first["contributions"]["review"], abs=1e-5)
    page = (tmp_path / "reviews_explanations" / "explain.html").read_text(encoding="utf-8")
    assert ">地<" in page and "rgba(" in page


def test_bad_input_is_one_error_line(table_run, cli, tmp_path):
    import pandas as pd

    workdir, run_id = table_run
    bundle = workdir / "runs" / run_id / "bundle"
    table = pd.read_csv(workdir / "table.csv")
    table.drop(columns=["income"]).to_csv(tmp_path / "no_income.csv", index=False)
    (tmp_path / "table.csv").write_bytes((workdir / "table.csv").read_bytes())
    cases = {
        "out of range": (["--rows", "0,500"], "table.csv", "row 500 is out of range"),
        "not a row": (["--rows", "first"], "table.csv", "--rows"),
        "backwards": (["--rows", "5-2"], "table.csv", "runs backwards"),
        "both ways": (["--rows", "1", "--top", "2"], "table.csv", "--rows and --top"),
        "columns": ([], "no_income.csv", "income"),
        "top zero": (["--top", "0"], "table.csv", "--top"),
    }
    for name, (options, data, words) in cases.items():
        line = one_error_line(cli("explain", bundle, data, *options, cwd=tmp_path))
        assert words in line, (name, line)
    assert not (tmp_path / "table_explanations").exists() and not (tmp_path / "no_income_explanations").exists()


def test_a_bundle_of_a_kind_without_explanations_is_one_error_line(tmp_path, cli):
    from forgeml.bundle import write_bundle_files
    from forgeml.explain.methods import method_for
    from forgeml.errors import ConfigError

    lm = write_bundle_files(tmp_path / "lm_bundle", lambda folder: (folder / "config.yaml").write_text("{}\n"), task="lm", kind="lm")
    (tmp_path / "rows.csv").write_text("text\nhello\n")
    assert "language-model" in one_error_line(cli("explain", lm, "rows.csv", cwd=tmp_path))
    with pytest.raises(ConfigError, match="no explanation method for model family 'knn'"):
        method_for("knn")
