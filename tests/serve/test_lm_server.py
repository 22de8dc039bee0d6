"""``forgeml serve <lm-bundle>`` as a real uvicorn process on loopback: /v1/generate streamed as
server-sent events and as JSON, seeded determinism, bad input named, API keys, a client that
leaves mid-stream, the request timeout, /v1/model and /metrics."""
from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.lm.conftest import make_corpus, tiny_config

LONG = 4096  # the server's --max-new-tokens in these tests: seconds of greedy tokens, so half of them is never reached by chance on a fast machine


@pytest.fixture(scope="module")
def lm_bundle(tmp_path_factory) -> Path:
    """A tiny GPT trained for a few steps (seconds), written as a real LM bundle."""
    import torch

    from forgeml.lm.bundle import write_lm_bundle
    from forgeml.lm.corpus import prepare_corpus
    from forgeml.lm.train import LMTrainer

    root = tmp_path_factory.mktemp("lm-serve")
    corpus_dir = make_corpus(root / "corpus")
    config = tiny_config(corpus_dir)
    corpus = prepare_corpus(corpus_dir, config.corpus, cache_dir=root / "cache")
    config = config.model_copy(update={"model": config.model.model_copy(update={"vocab_size": corpus.meta["vocab_size"]})})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = LMTrainer(config).fit(corpus)
    finally:
        torch.set_num_threads(threads)
    return write_lm_bundle(root / "run" / "bundle", result.model, corpus.tokenizer_json, config, result.metrics, corpus.meta)


@pytest.fixture(scope="module")
def lm_server(lm_bundle, key_file, start_server, tmp_path_factory):
    with start_server(lm_bundle, "--api-key-file", str(key_file), "--max-new-tokens", str(LONG), "--max-body-bytes", "4000",
                      workdir=tmp_path_factory.mktemp("lm_server")) as server:
        yield server


def post(server, body, headers, timeout: float = 60, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/generate", json=body, headers=headers, timeout=timeout, **kwargs)


def read_events(server, body, headers) -> list[tuple[float, str, dict]]:
    """(seconds since the request, event name, data) per server-sent event, as each one arrives."""
    events, name, started = [], "message", time.perf_counter()
    with httpx.stream("POST", f"{server.url}/v1/generate", json=body, headers=headers, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((time.perf_counter() - started, name, json.loads(line[len("data: "):])))
                name = "message"
    return events


def metric(server, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return 0.0


# ----------------------------------------------------------------------------- answers
def test_stream_arrives_piece_by_piece_and_equals_the_json_answer(lm_server, auth) -> None:
    # a seed whose completion runs to max_new_tokens, so the stream is long enough to watch
    body = {"prompt": "def ", "max_new_tokens": 300, "temperature": 0.8, "top_k": 100}
    for seed in range(10):
        answer = post(lm_server, {**body, "seed": seed, "stream": False}, auth)
        assert answer.status_code == 200, answer.text
        completion = answer.json()["completions"][0]
        if completion["finish_reason"] == "length":
            break
    assert completion["tokens"] == 300
    events = read_events(lm_server, {**body, "seed": seed}, auth)
    pieces = [(at, data["text"]) for at, name, data in events if name == "message"]
    *_, (done_at, last, done) = events
    assert last == "done" and done["finish_reason"] == "length" and done["tokens"] == 300
    assert "".join(text for _, text in pieces) == completion["text"]
    assert len(pieces) > 50  # one event per certain piece, not one at the end
    first_at = pieces[0][0]
    assert first_at < done_at / 2, (first_at, done_at)  # the first text came long before the end


def test_same_seed_same_text_batch_equals_single(lm_server, auth) -> None:
    body = {"prompt": "import ", "max_new_tokens": 24, "seed": 5, "stream": False, "repetition_penalty": 1.2, "top_p": 0.9}
    first = post(lm_server, body, auth).json()["completions"][0]["text"]
    assert post(lm_server, body, auth).json()["completions"][0]["text"] == first
    assert post(lm_server, {**body, "seed": 6}, auth).json()["completions"][0]["text"] != first
    greedy = {"max_new_tokens": 12, "temperature": 0, "stream": False}
    batch = post(lm_server, {**greedy, "prompts": ["class ", "import "]}, auth).json()["completions"]
    alone = post(lm_server, {**greedy, "prompt": "import "}, auth).json()["completions"][0]
    assert len(batch) == 2 and batch[1] == alone


def test_a_stop_string_ends_the_stream_like_the_json_answer(lm_server, auth) -> None:
    body = {"prompt": "def ", "max_new_tokens": 200, "seed": 1}
    full = post(lm_server, {**body, "stream": False}, auth).json()["completions"][0]["text"]
    stop = full[10:12]
    cut = post(lm_server, {**body, "stop": [stop], "stream": False}, auth).json()["completions"][0]
    assert cut["finish_reason"] == "stop" and cut["text"] == full[: full.index(stop)]
    events = read_events(lm_server, {**body, "stop": [stop]}, auth)
    assert "".join(d["text"] for _, name, d in events if name == "message") == cut["text"]
    assert events[-1][2]["finish_reason"] == "stop"


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("body, field", [
    ({"prompt": "a", "max_new_tokens": 0}, "max_new_tokens"),
    ({"prompt": "a", "max_new_tokens": -3}, "max_new_tokens"),
    ({"prompt": "a", "max_new_tokens": LONG + 1}, "max_new_tokens"),
    ({"prompt": "a", "max_new_tokens": "5"}, "max_new_tokens"),
    ({"prompt": "a", "temperature": -1}, "temperature"),
    ({"prompt": "a", "temperature": "0.5"}, "temperature"),
    ({"prompt": "a", "top_p": 0}, "top_p"),
    ({"prompt": "a", "top_k": 0}, "top_k"),
    ({"prompt": "a", "repetition_penalty": 0}, "repetition_penalty"),
    ({"prompt": 3}, "prompt"),
    ({"prompt": "a", "temprature": 1}, "temprature"),
    ({"prompt": "word " * 80}, "prompt"),
    ({"prompts": ["a", "word " * 80], "stream": False}, "prompts[1]"),
    ({"prompts": [], "stream": False}, "prompts"),
    ({"prompts": ["a", "b"]}, "body"),
    ({"prompt": "a", "prompts": ["b"], "stream": False}, "body"),
])
def test_bad_input_is_a_422_naming_the_field(lm_server, auth, body, field) -> None:
    response = post(lm_server, body, auth)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["detail"]], response.text


def test_a_prompt_longer_than_the_context_says_what_to_do(lm_server, auth) -> None:
    detail = post(lm_server, {"prompt": "word " * 80}, auth).json()["detail"][0]
    assert "context is 32" in detail["message"] and "shorten it" in detail["message"]


def test_api_keys_content_type_and_body_limit(lm_server, auth) -> None:
    body = {"prompt": "a", "max_new_tokens": 2, "stream": False}
    assert post(lm_server, body, None).status_code == 401
    assert post(lm_server, body, {"X-API-Key": "wrong"}).status_code == 401
    assert post(lm_server, body, {"X-API-Key": "another-plain-key"}).status_code == 200
    assert httpx.post(f"{lm_server.url}/v1/generate", content=b"prompt=a", headers={**auth, "content-type": "text/plain"}).status_code == 415
    assert post(lm_server, {"prompt": "x" * 5000}, auth).status_code == 413
    assert httpx.get(f"{lm_server.url}/v1/model").status_code == 401


# ----------------------------------------------------------------------------- stopping early
def test_a_client_that_leaves_mid_stream_stops_the_generation(lm_server, auth) -> None:
    before_tokens = metric(lm_server, "forgeml_generated_tokens_total")
    before_left = metric(lm_server, "forgeml_generate_requests_total", mode="stream", finish_reason="client_left")
    started = time.perf_counter()
    # greedy from this tiny model repeats one token and never ends a document: LONG tokens (seconds) unless stopped
    with httpx.stream("POST", f"{lm_server.url}/v1/generate", json={"prompt": "", "max_new_tokens": LONG, "temperature": 0},
                      headers=auth, timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                break  # the first piece: hang up
    deadline = time.monotonic() + 20
    while metric(lm_server, "forgeml_generate_requests_total", mode="stream", finish_reason="client_left") == before_left:
        assert time.monotonic() < deadline, "the server did not notice the client leaving"
        time.sleep(0.05)
    generated = metric(lm_server, "forgeml_generated_tokens_total") - before_tokens
    for _ in range(50):  # the worker counts its tokens once it has stopped
        if generated:
            break
        time.sleep(0.05)
        generated = metric(lm_server, "forgeml_generated_tokens_total") - before_tokens
    assert 0 < generated < LONG / 2, (generated, time.perf_counter() - started)
    time.sleep(0.5)
    assert metric(lm_server, "forgeml_generated_tokens_total") - before_tokens == generated  # and nothing more since


def test_a_json_client_that_hangs_up_stops_its_generation_too(lm_server, auth) -> None:
    before_tokens = metric(lm_server, "forgeml_generated_tokens_total")
    before_left = metric(lm_server, "forgeml_generate_requests_total", mode="json", finish_reason="client_left")
    with pytest.raises(httpx.ReadTimeout):  # gives up after 0.3 s of a generation that takes seconds
        post(lm_server, {"prompt": "", "max_new_tokens": LONG, "temperature": 0, "stream": False}, auth, timeout=0.3)
    deadline = time.monotonic() + 20
    while metric(lm_server, "forgeml_generate_requests_total", mode="json", finish_reason="client_left") == before_left:
        assert time.monotonic() < deadline, "the server did not notice the client leaving"
        time.sleep(0.05)
    generated = metric(lm_server, "forgeml_generated_tokens_total") - before_tokens
    assert 0 < generated < LONG / 2
    time.sleep(0.5)
    assert metric(lm_server, "forgeml_generated_tokens_total") - before_tokens == generated


def test_the_request_timeout_stops_generation(lm_bundle, start_server, tmp_path) -> None:
    with start_server(lm_bundle, "--timeout-ms", "300", "--max-new-tokens", "100000", workdir=tmp_path) as server:
        body = {"prompt": "", "max_new_tokens": 100000, "temperature": 0}
        started = time.perf_counter()
        response = httpx.post(f"{server.url}/v1/generate", json={**body, "stream": False}, timeout=60)
        assert response.status_code == 504 and "300 ms" in response.json()["error"]
        assert time.perf_counter() - started < 10
        events = read_events(server, body, None)
        name, data = events[-1][1:]
        assert name == "error" and data["status"] == 504 and 0 < data["tokens"] < 100000
        time.sleep(0.3)
        stopped = metric(server, "forgeml_generated_tokens_total")
        time.sleep(0.5)
        assert metric(server, "forgeml_generated_tokens_total") == stopped  # the workers stopped too


# ----------------------------------------------------------------------------- describing
def test_model_info_and_metrics(lm_server, auth) -> None:
    info = httpx.get(f"{lm_server.url}/v1/model", headers=auth).json()
    assert info["kind"] == "lm" and info["preset"] == "tiny" and info["context"] == 32 and info["vocab_size"] == 512
    assert info["params"] > 100_000 and info["device"] == "cpu" and info["limits"]["max_new_tokens"] == LONG
    assert "max_new_tokens" in info["input_schema"]["properties"] and info["metrics"]["val_loss"] > 0
    before = metric(lm_server, "forgeml_generate_requests_total", mode="json", finish_reason="length")
    tokens = metric(lm_server, "forgeml_generated_tokens_total")
    post(lm_server, {"prompts": ["a", "b"], "max_new_tokens": 3, "temperature": 0, "stream": False}, auth)
    assert metric(lm_server, "forgeml_generate_requests_total", mode="json", finish_reason="length") == before + 2
    assert metric(lm_server, "forgeml_generated_tokens_total") == tokens + 6
    assert metric(lm_server, "forgeml_requests_total", route="/v1/generate", status="200") > 0
    assert httpx.get(f"{lm_server.url}/readyz").json()["status"] == "ready"
