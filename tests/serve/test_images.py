"""Image bundles served: image bytes (base64) by default, paths only under --image-root, no leaks."""
from __future__ import annotations

import base64
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from forgeml.errors import ConfigError
from forgeml.serve.app import create_app
from forgeml.serve.settings import ServeSettings
from tests.multimodal_data import shape_image


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def predict(client: TestClient, image) -> dict:
    response = client.post("/v1/predict", json={"rows": [{"image": image}]})
    return {"status": response.status_code, **response.json()}


def test_image_bytes_are_the_default_input(image_bundle):
    bundle, root = image_bundle
    picture = root / "left" / "left_000.png"
    app = create_app(bundle)
    want = app.state.service.predictor.predict(pd.DataFrame({"image": [str(picture)]}))
    with TestClient(app) as client:
        plain = predict(client, b64(picture))
        data_url = predict(client, "data:image/png;base64," + b64(picture))
        assert plain["status"] == data_url["status"] == 200, plain
        assert plain["predictions"] == data_url["predictions"]
        assert plain["predictions"][0]["prediction"] == want["label_prediction"][0]
        np.testing.assert_allclose(plain["predictions"][0]["probabilities"]["left"], want["label_proba_left"][0], atol=1e-6)
        # a path is never opened without --image-root: the answer is the same for any path
        for path in (str(picture), "/etc/passwd", "/no/such/file.png"):
            refused = predict(client, {"path": path})
            assert refused["status"] == 422 and "--image-root" in refused["error"], refused
        bad = predict(client, "not base64!")
        assert bad["status"] == 422 and bad["detail"][0]["field"] == "rows[0].image" and "base64" in bad["error"]
        junk = predict(client, base64.b64encode(b"just some bytes").decode())
        assert junk["status"] == 422 and "image bytes: not an image" in junk["error"]


def test_paths_only_inside_the_image_root_and_refusals_do_not_tell_what_exists(image_bundle, tmp_path):
    bundle, root = image_bundle
    served = tmp_path / "served"
    (served / "sub").mkdir(parents=True)
    (served / "sub" / "ok.png").write_bytes((root / "left" / "left_001.png").read_bytes())
    outside = tmp_path / "secret.png"
    outside.write_bytes((root / "left" / "left_002.png").read_bytes())
    (served / "escape.png").symlink_to(outside)  # a link leading out of the root
    (served / "folder.png").mkdir()
    os.mkfifo(served / "pipe.png")  # reading it would block the scoring thread forever
    with TestClient(create_app(bundle, ServeSettings(image_root=served))) as client:
        ok = predict(client, {"path": "sub/ok.png"})
        assert ok["status"] == 200 and ok["predictions"] == predict(client, b64(served / "sub" / "ok.png"))["predictions"]
        words = {}
        started = time.perf_counter()
        for path in ("../secret.png", "escape.png", str(outside), "folder.png", "pipe.png", "missing.png", "sub/../../secret.png"):
            refused = predict(client, {"path": path})
            assert refused["status"] == 422, (path, refused)
            words[path] = refused["error"].replace(repr(path), "<path>")
        assert time.perf_counter() - started < 5  # the FIFO did not block
        assert len(set(words.values())) == 1, words  # an existing file outside the root reads like a missing one
        assert "under the image root" in next(iter(words.values()))
        assert predict(client, {"path": "sub/ok.png"})["status"] == 200  # the server still answers


def test_a_failed_path_is_not_remembered(image_bundle, tmp_path):
    bundle, root = image_bundle
    with TestClient(create_app(bundle, ServeSettings(image_root=tmp_path))) as client:
        assert predict(client, {"path": "late.png"})["status"] == 422
        (tmp_path / "late.png").write_bytes((root / "right" / "right_000.png").read_bytes())
        assert predict(client, {"path": "late.png"})["status"] == 200  # read again, now it is there


def test_csv_upload_reads_image_cells_as_base64_or_under_the_root(image_bundle, tmp_path):
    bundle, root = image_bundle
    names = ["left/left_003.png", "right/right_003.png", "../escape.png"]
    rng = np.random.default_rng(0)
    shape_image("left", rng, 16).save(tmp_path / "escape.png")
    with TestClient(create_app(bundle, ServeSettings(image_root=root))) as client:
        response = client.post("/v1/predict/csv", files={"file": ("rows.csv", pd.DataFrame({"image": names}).to_csv(index=False), "text/csv")})
    assert response.status_code == 200, response.text
    got = pd.read_csv(io.StringIO(response.text))
    assert got["image"].tolist() == names  # the cells as sent, not the bytes read
    assert got["label_prediction"].notna().tolist() == [True, True, False]
    assert "under the image root" in got.loc[2, "error"]
    cells = [b64(root / names[0]), names[1]]
    with TestClient(create_app(bundle)) as client:  # no root: base64 cells, and paths are refused per row
        response = client.post("/v1/predict/csv", files={"file": ("rows.csv", pd.DataFrame({"image": cells}).to_csv(index=False), "text/csv")})
    got = pd.read_csv(io.StringIO(response.text))
    assert response.status_code == 200 and got["label_prediction"].notna().tolist() == [True, False]
    assert "--image-root" in got.loc[1, "error"]


def test_image_root_must_be_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="image root"):
        ServeSettings(image_root=tmp_path / "nope")


def test_an_uploaded_pixel_bomb_is_refused_before_decoding(image_bundle, monkeypatch):
    """A small file can hold a huge picture; uploads decode at most MAX_UPLOAD_PIXELS (lowered here)."""
    from PIL import Image

    import forgeml.features.image as image_module

    bundle, _ = image_bundle
    monkeypatch.setattr(image_module, "MAX_UPLOAD_PIXELS", 100 * 100)
    big = io.BytesIO()
    Image.new("L", (400, 300), 0).save(big, format="PNG")
    small = io.BytesIO()
    Image.new("L", (90, 90), 0).save(small, format="PNG")
    with TestClient(create_app(bundle)) as client:
        refused = predict(client, base64.b64encode(big.getvalue()).decode())
        assert refused["status"] == 422 and "too large to decode (400×300 pixels" in refused["error"]
        assert predict(client, base64.b64encode(small.getvalue()).decode())["status"] == 200


def test_csv_upload_with_the_images_beside_it(image_bundle):
    """curl -F file=@rows.csv -F images=@a.png -F images=@b.png: cells name the uploaded files."""
    bundle, root = image_bundle
    first, second = root / "left" / "left_004.png", root / "stripes" / "stripes_004.png"
    csv = pd.DataFrame({"image": ["a.png", "b.png", "c.png"]}).to_csv(index=False)
    files = [("file", ("rows.csv", csv, "text/csv")), ("images", ("a.png", first.read_bytes(), "image/png")),
             ("images", ("b.png", second.read_bytes(), "image/png"))]
    app = create_app(bundle)
    want = app.state.service.predictor.predict(pd.DataFrame({"image": [str(first), str(second)]}))
    with TestClient(app) as client:
        response = client.post("/v1/predict/csv", files=files)
        schema = client.get("/openapi.json").json()
    assert response.status_code == 200, response.text
    got = pd.read_csv(io.StringIO(response.text))
    assert got["image"].tolist() == ["a.png", "b.png", "c.png"]
    assert got["label_prediction"].tolist()[:2] == want["label_prediction"].tolist()
    assert pd.isna(got.loc[2, "label_prediction"]) and "--image-root" in got.loc[2, "error"]  # not uploaded, and no root
    assert "images" in json.dumps(schema["components"]["schemas"])
