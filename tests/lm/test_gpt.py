"""The GPT module: sizes, causality, tying, optimizer groups, the KV cache."""
from __future__ import annotations

import pytest
import torch

from forgeml.lm.config import PRESETS, GPTConfig, LMConfig
from forgeml.lm.gpt import GPT, KVCache


def _model(**shape) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{"vocab_size": 97, "block_size": 24, "n_layer": 2, "n_head": 2, "n_embd": 32, **shape}))


def test_presets_span_tiny_to_small_with_small_in_the_10_to_30m_range() -> None:
    sizes = {name: GPT(LMConfig.from_preset(name).model.model_copy(update={"vocab_size": PRESETS[name]["vocab_size"]})).num_params()
             for name in ("tiny", "small")}
    assert sizes["tiny"] < 200_000
    assert 10_000_000 <= sizes["small"] <= 30_000_000


def test_parameter_count_and_flops_follow_the_formulas() -> None:
    model = _model()
    c = model.config
    per_block = 12 * c.n_embd**2 + 2 * c.n_embd  # qkv + proj + mlp (no bias) + two layer-norm scales
    expected = c.vocab_size * c.n_embd + c.n_layer * per_block + c.n_embd  # tied head counted once, + final norm
    assert model.num_params() == expected
    assert model.num_params(non_embedding=False) == expected + c.block_size * c.n_embd
    assert model.flops_per_token() == 6 * expected + 12 * c.n_layer * c.n_embd * c.block_size
    assert model.lm_head.weight is model.wte.weight
    assert _model(tie_weights=False).lm_head.weight is not _model(tie_weights=False).wte.weight


def test_a_token_never_sees_the_future() -> None:
    model = _model().eval()
    x = torch.randint(0, 97, (2, 16))
    changed = x.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 97
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_decay_applies_only_to_matrices() -> None:
    model = _model(bias=True)
    decayed, plain = model.optimizer_groups(0.1, 1e-3)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() < 2 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_incremental_forward_with_the_cache_equals_the_full_forward() -> None:
    model = _model().eval()
    x = torch.randint(0, 97, (3, 12))
    cache = KVCache(model, batch=3)
    with torch.no_grad():
        full, _ = model(x)
        first, _ = model(x[:, :7], cache=cache)
        steps = [model(x[:, t : t + 1], cache=cache)[0] for t in range(7, 12)]
    torch.testing.assert_close(torch.cat([first, *steps], dim=1), full, rtol=1e-4, atol=1e-5)
    assert cache.length == 12


def test_loss_is_cross_entropy_of_the_next_token() -> None:
    model = _model()
    x = torch.randint(0, 97, (2, 8))
    logits, loss = model(x, x)
    assert loss is not None and torch.isclose(loss, torch.nn.functional.cross_entropy(logits.view(-1, 97), x.view(-1)))


def test_width_must_divide_into_heads() -> None:
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
