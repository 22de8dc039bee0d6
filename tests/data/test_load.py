"""Loading tables: formats, encodings, delimiters, missing values, names, and every bad input."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml.data.load import describe_source, load_table
from forgeml.errors import DataError

CHINESE = "城市,价格,评论\n北京,100,很好吃，下次再来\n上海,200,一般般吧\n广州,150,服务态度非常好\n"
LATIN = "name;ville;prix\nMüller;Zürich;12\nCafé;Montréal;25\nÉlodie;Genève;3\n"


def _write(folder: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def _error(path: object, **options: object) -> str:
    with pytest.raises(DataError) as caught:
        load_table(path, **options)
    return str(caught.value)


# ----------------------------------------------------------------------------- encodings
def test_utf8_numbers_come_out_numeric_and_only_empty_fields_are_missing(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", "x,y,label\n1,2.5,None\n2,,NA\n3,4.0,null\n4,5.5,\n")
    df = load_table(path)
    assert df["x"].dtype == np.int64
    assert df["y"].dtype == np.float64 and df["y"].isna().sum() == 1
    assert df["label"].tolist()[:3] == ["None", "NA", "null"]  # kept as text for inference to judge
    assert pd.isna(df["label"].iloc[3])


def test_utf8_bom_is_stripped_from_first_column_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "bom.csv", "\ufeffid,val\n1,a\n2,b\n")
    assert list(load_table(path).columns) == ["id", "val"]


def test_gbk_chinese_names_and_values(tmp_path: Path) -> None:
    path = _write(tmp_path, "gbk.csv", CHINESE, encoding="gbk")
    df = load_table(path)
    assert list(df.columns) == ["城市", "价格", "评论"]
    assert df["城市"].tolist() == ["北京", "上海", "广州"]
    assert df["价格"].tolist() == [100, 200, 150]
    assert df["评论"].iloc[0] == "很好吃，下次再来"


TRADITIONAL = "名字,城市,評論,價格\n陳大文,臺北,這個東西很好吃，下次還會再來,120\n林小美,高雄,服務態度非常好,80\n張偉,香港,價格實惠,95\n"


@pytest.mark.parametrize("encoding", ["big5", "cp950"])
def test_big5_traditional_chinese_is_sniffed(tmp_path: Path, encoding: str) -> None:
    df = load_table(_write(tmp_path, "tw.csv", TRADITIONAL, encoding=encoding))
    assert list(df.columns) == ["名字", "城市", "評論", "價格"]
    assert df["城市"].tolist() == ["臺北", "高雄", "香港"] and df["評論"].iloc[0] == "這個東西很好吃，下次還會再來"
    assert load_table(_write(tmp_path, "cn.csv", CHINESE, encoding="gbk"))["城市"].tolist() == ["北京", "上海", "广州"]


def test_a_fallback_encoding_is_tried_after_utf8_each_file_on_its_own(tmp_path: Path) -> None:
    """A bundle trained on GBK data (data.encoding: gbk) reads UTF-8 files as UTF-8."""
    utf8 = _write(tmp_path, "utf8.csv", CHINESE)
    gbk = _write(tmp_path, "gbk.csv", CHINESE, encoding="gbk")
    rare = _write(tmp_path, "rare.csv", "名字,n\n喆,1\n堃,2\n", encoding="gbk")  # not GB2312: sniffing alone says cp1252
    assert load_table(utf8, fallback_encoding="gbk")["城市"].tolist() == ["北京", "上海", "广州"]
    assert load_table(gbk, fallback_encoding="gbk")["城市"].tolist() == ["北京", "上海", "广州"]
    assert load_table(rare, fallback_encoding="gbk")["名字"].tolist() == ["喆", "堃"]
    json_file = _write(tmp_path, "rows.json", '[{"城市": "北京"}]')
    assert load_table(json_file, fallback_encoding="gbk")["城市"].tolist() == ["北京"]
    assert "unknown encoding 'klingon'" in _error(gbk, fallback_encoding="klingon")


def test_latin1_french_and_german_with_semicolons(tmp_path: Path) -> None:
    path = _write(tmp_path, "latin.csv", LATIN, encoding="latin-1")
    df = load_table(path)
    assert list(df.columns) == ["name", "ville", "prix"]
    assert df["name"].tolist() == ["Müller", "Café", "Élodie"]
    assert df["ville"].tolist() == ["Zürich", "Montréal", "Genève"]


@pytest.mark.parametrize(("text", "encoding"), [
    ("名字,年龄\n张三,20\n", "gbk"),  # short: statistical detectors guess Korean here
    ("Name,Straße\nJürgen,Hauptstraße 5\nÄnne,Gänseweg\n", "latin-1"),  # decodes as GB18030 too
    ("名字,城市\n李四,深圳\n" * 50, "gb18030"),
    ("a,b\nnaïve,façade\n", "utf-16"),
])
def test_short_files_decode_exactly(tmp_path: Path, text: str, encoding: str) -> None:
    df = load_table(_write(tmp_path, "s.csv", text, encoding=encoding))
    expected = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert df.columns.tolist() == expected.columns.tolist()
    assert df.iloc[0].tolist() == expected.iloc[0].tolist()


def test_cp1252_euro_sign(tmp_path: Path) -> None:
    path = _write(tmp_path, "euro.csv", "item,price\ncafé,5€\nthé,3€\n", encoding="cp1252")
    assert load_table(path)["price"].tolist() == ["5€", "3€"]


def test_explicit_encoding_is_used_and_a_wrong_one_is_explained(tmp_path: Path) -> None:
    path = _write(tmp_path, "gbk.csv", CHINESE, encoding="gbk")
    assert load_table(path, encoding="gbk")["城市"].iloc[1] == "上海"
    message = _error(path, encoding="utf-8")
    assert "gbk.csv" in message and "cannot be decoded as utf-8" in message


# ----------------------------------------------------------------------------- delimiters
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("semi.csv", "a;b;c\n1;x;2,5\n2;y;3,5\n"),
        ("tabs.tsv", "a\tb\tc\n1\tx\t2\n2\ty\t3\n"),
        ("tabs.txt", "a\tb\tc\n1\tx, z\t2\n2\ty\t3\n"),
        ("pipe.csv", "a|b|c\n1|x|2\n2|y|3\n"),
        ("comma.dat", 'a,b,c\n1,"x; y",2\n2,y,3\n'),
    ],
)
def test_delimiter_is_sniffed(tmp_path: Path, name: str, content: str) -> None:
    df = load_table(_write(tmp_path, name, content))
    assert list(df.columns) == ["a", "b", "c"]
    assert df["a"].tolist() == [1, 2]


def test_semicolon_files_with_decimal_commas_are_sniffed(tmp_path: Path) -> None:
    path = _write(tmp_path, "de.csv", "preis;stadt;menge\n1.234,56 €;Köln;3,5\n12,50 €;Bonn;2\n7;Ulm;1,25\n")
    df = load_table(path)
    assert list(df.columns) == ["preis", "stadt", "menge"]
    assert df["preis"].tolist() == ["1.234,56 €", "12,50 €", "7"]  # parsed by inference, with its decimal mark


def test_explicit_delimiter_and_its_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "odd.csv", "a:b\n1:2\n")
    assert list(load_table(path, delimiter=":").columns) == ["a", "b"]
    tabs = _write(tmp_path, "t.csv", "a\tb\n1\t2\n")
    assert list(load_table(tabs, delimiter="\\t").columns) == ["a", "b"]
    assert "one character" in _error(path, delimiter="::")


def test_a_fallback_delimiter_is_only_a_hint_each_file_is_sniffed(tmp_path: Path) -> None:
    """A bundle trained on a ;-separated file (data.delimiter: ";") reads comma files by commas."""
    commas = _write(tmp_path, "commas.csv", "a,b,c\n1,x,2\n2,y,3\n")
    assert list(load_table(commas, fallback_delimiter=";").columns) == ["a", "b", "c"]
    semis = _write(tmp_path, "semis.csv", "a;b\n1;x,y\n2;z\n")
    assert load_table(semis, fallback_delimiter=";")["b"].tolist() == ["x,y", "z"]
    colons = _write(tmp_path, "colons.csv", "a:b\n1:2\n")  # not a sniffed candidate: the hint is used
    assert list(load_table(colons, fallback_delimiter=":").columns) == ["a", "b"]
    assert "one character" in _error(colons, fallback_delimiter="::")


def test_quoted_fields_keep_delimiters_and_newlines(tmp_path: Path) -> None:
    path = _write(tmp_path, "q.csv", 'id,remark\n1,"hit, then\nlanded"\n2,plain\n')
    df = load_table(path)
    assert df["remark"].tolist() == ["hit, then\nlanded", "plain"]


def test_dates_and_booleans_stay_text_for_inference(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "d,flag,empty\n2007-11-11,True,\n2008-01-02,False,\n")
    df = load_table(path)
    assert df["d"].tolist() == ["2007-11-11", "2008-01-02"]
    assert df["flag"].tolist() == ["True", "False"]
    assert df["empty"].dtype == np.float64 and df["empty"].isna().all()


def test_short_rows_are_padded_with_missing(tmp_path: Path) -> None:
    df = load_table(_write(tmp_path, "short.csv", "a,b,c\n1,2,3\n4,5\n"))
    assert len(df) == 2 and pd.isna(df["c"].iloc[1])


def test_trailing_empty_header_becomes_unnamed(tmp_path: Path) -> None:
    df = load_table(_write(tmp_path, "trail.csv", "a,b,\n1,2,\n3,4,\n"))
    assert list(df.columns) == ["a", "b", "Unnamed: 2"]


# ----------------------------------------------------------------------------- other formats
def test_parquet_and_pq(tmp_path: Path) -> None:
    frame = pd.DataFrame({"n": [1.5, 2.5], "s": ["a", "None"], "c": pd.Categorical(["x", "y"])})
    for name in ("t.parquet", "t.pq", "t.bin"):  # .bin: found by the PAR1 magic
        frame.to_parquet(tmp_path / name)
        df = load_table(tmp_path / name)
        assert df["n"].tolist() == [1.5, 2.5] and df["s"].tolist() == ["a", "None"]
        assert not isinstance(df["c"].dtype, pd.CategoricalDtype)


def test_json_lines_array_and_columns(tmp_path: Path) -> None:
    records = [{"a": 1, "b": "None"}, {"a": 2, "b": "x"}]
    lines = "\n".join(json.dumps(record) for record in records) + "\n"
    columns = json.dumps({"a": [1, 2], "b": ["None", "x"]})
    cases = [("r.jsonl", lines), ("r.ndjson", lines), ("r.json", lines), ("arr.json", json.dumps(records)),
             ("cols.json", columns), ("sniffed.data", json.dumps(records))]
    for name, content in cases:
        df = load_table(_write(tmp_path, name, content))
        assert df["a"].tolist() == [1, 2] and df["b"].tolist() == ["None", "x"], name


@pytest.mark.parametrize("orient", ["records", "columns", "index", "split", "table", "values-lines"])
def test_json_as_pandas_writes_it(tmp_path: Path, orient: str) -> None:
    frame = pd.DataFrame({"城市": ["北京", "上海", "广州"], "x": [1.5, 2.5, 3.5], "n": [1, 2, 3]})
    if orient == "values-lines":
        text = frame.to_json(orient="records", lines=True, force_ascii=False)
    else:
        text = frame.to_json(orient=orient, force_ascii=False, indent=2)
    df = load_table(_write(tmp_path, "frame.json", text))
    pd.testing.assert_frame_equal(df, frame, check_dtype=False)
    assert df["x"].dtype == np.float64


def test_nested_json_is_flattened(tmp_path: Path) -> None:
    path = _write(tmp_path, "n.json", json.dumps([{"a": 1, "geo": {"lat": 1.0}}, {"a": 2, "geo": {"lat": 2.0}}]))
    assert list(load_table(path).columns) == ["a", "geo.lat"]


def test_gzipped_csv(tmp_path: Path) -> None:
    path = _write(tmp_path, "z.csv.gz", gzip.compress(b"a,b\n1,2\n3,4\n"))
    assert load_table(path)["b"].tolist() == [2, 4]


# ----------------------------------------------------------------------------- DataFrames, names
def test_dataframe_is_copied_never_modified() -> None:
    original = pd.DataFrame({" a ": [1, 2], 3: ["x", "y"]})
    df = load_table(original)
    df.loc[0, "a"] = 99
    assert list(df.columns) == ["a", "3"]
    assert list(original.columns) == [" a ", 3] and original[" a "].tolist() == [1, 2]


def test_column_names_are_stripped(tmp_path: Path) -> None:
    assert list(load_table(_write(tmp_path, "s.csv", " a , b\n1,2\n")).columns) == ["a", "b"]


def test_duplicate_names_are_an_error_naming_them(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "dup.csv", "a,b,a \n1,2,3\n"))
    assert "dup.csv" in message and "duplicate column names: 'a'" in message
    with pytest.raises(DataError, match="'x'"):
        load_table(pd.DataFrame([[1, 2]], columns=["x", "x"]))


def test_describe_source(tmp_path: Path) -> None:
    assert describe_source(tmp_path / "data.csv") == "data.csv"
    assert describe_source("folder/birds.csv") == "birds.csv"
    assert describe_source(pd.DataFrame()) == "DataFrame"


# ----------------------------------------------------------------------------- bad inputs
def test_missing_file_suggests_similar_names(tmp_path: Path) -> None:
    _write(tmp_path, "birds.csv", "a\n1\n")
    message = _error(tmp_path / "bird.csv")
    assert "bird.csv" in message and "file not found" in message and "did you mean 'birds.csv'" in message


def test_missing_folder(tmp_path: Path) -> None:
    message = _error(tmp_path / "nowhere" / "x.csv")
    assert "x.csv" in message and "folder does not exist" in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert "folder, not a file" in _error(tmp_path)


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("zero.csv", b"", "empty (0 bytes)"),
    ("blank.csv", b"  \n\n \t\n", "empty (only whitespace)"),
    ("header.csv", b"a,b,c\n", "no rows"),
    ("header.parquet", None, "no rows"),
    ("image.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "PNG image"),
    ("random.csv", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "binary data"),
    ("book.xlsx", b"PK\x03\x04junk", "spreadsheet"),
    ("zipped.csv", b"PK\x03\x04junk", "ZIP archive"),
    ("broken.parquet", b"PAR1 this is not really parquet", "not a readable Parquet file"),
    ("bad.jsonl", b'{"a": 1}\n{"a": \n', "not valid JSON on line 2"),
    ("list.json", b"[1, 2, 3]", "expected JSON objects"),
    ("empty.json", b"[]", "no records"),
    # a hand-edited array: where the error is, not "line 1" as if it were JSON lines
    ("comma.json", b'[\n  {"a": 1},\n  {"a": 2},\n]\n', "not valid JSON: Expecting value (line 4, column 1)"),
    ("pretty.json", b'{\n  "a": [1, 2],\n  "b": [3, 4,]\n}\n', "not valid JSON: Expecting value (line 3, column 14)"),
    ("ragged.json", b'{"a": [1, 2], "b": [3]}', "lists differ in length ('a': 2, 'b': 1)"),
    ("wrapped.json", b'{"data": [{"a": 1}, {"a": 2}]}', "the records are inside the key 'data'"),
], ids=lambda value: value if isinstance(value, str) and not value.startswith(("empty (", "no ")) else None)
def test_bad_files_raise_data_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / name
    if content is None:
        pd.DataFrame({"a": pd.Series([], dtype="float64")}).to_parquet(path)
    else:
        path.write_bytes(content)
    message = _error(path)
    assert name in message and expected in message


def test_text_blob_with_inconsistent_fields_is_not_a_table(tmp_path: Path) -> None:
    prose = (
        "It was the best of times, it was the worst of times, it was the age of wisdom\n"
        "it was the age of foolishness\n"
        "it was the epoch of belief, it was the epoch of incredulity\n"
        "it was the season of Light; it was the season of Darkness\n"
        "it was the spring of hope, it was the winter of despair, we had everything before us\n"
        "we had nothing before us\n"
    )
    message = _error(_write(tmp_path, "tale.txt", prose))
    assert "tale.txt" in message and "not a table" in message


def test_too_many_fields_is_a_data_error_not_a_parser_traceback(tmp_path: Path) -> None:
    rows = "a,b\n" + "1,2\n" * 20 + "3,4,5,6\n"
    message = _error(_write(tmp_path, "ragged.csv", rows))
    assert "ragged.csv" in message and "not a table" in message and "line 22" in message


def test_single_column_blob_with_stray_delimiters_is_not_a_table(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "notes.txt", "hello world\nthis is, a test\nmore text\n"))
    assert "notes.txt" in message and "more fields than the header" in message


def test_a_latin1_byte_past_the_sniffed_sample_still_decodes_right(tmp_path: Path) -> None:
    """The UTF-8 fast path decodes only a sample; a cp1252 byte far below must send it back."""
    rows = ["city,amount"] + [f"Berlin,{i}" for i in range(20_000)] + ["Köln,7"]
    path = tmp_path / "late.csv"
    path.write_bytes("\n".join(rows).encode("cp1252"))
    frame = load_table(path)
    assert len(frame) == 20_001
    assert frame["city"].iloc[-1] == "Köln"
    assert frame["amount"].dtype == np.int64


def test_large_utf8_file_reads_in_place_with_chinese_values(tmp_path: Path) -> None:
    rows = ["城市,金额"] + [f"北京,{i}" for i in range(20_000)]
    path = tmp_path / "big.csv"
    path.write_text("\ufeff" + "\n".join(rows), encoding="utf-8")
    frame = load_table(path)
    assert list(frame.columns) == ["城市", "金额"]
    assert frame["金额"].sum() == sum(range(20_000))
