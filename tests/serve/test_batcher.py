"""The micro-batcher on its own: grouping, routing, limits, deadlines, isolation."""
from __future__ import annotations

import asyncio
import time

import pytest

from forgeml.serve.batcher import DeadlineExceeded, MicroBatcher, Overloaded


def run(coro):
    return asyncio.run(coro)


def test_results_go_to_the_right_caller_and_requests_share_batches():
    seen: list[list[int]] = []

    def double(payloads):
        seen.append([p for p in payloads])
        time.sleep(0.002)
        return [p * 2 for p in payloads]

    async def main():
        batcher = MicroBatcher(double, max_batch_rows=16, max_wait_s=0.02)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i, 1, timeout_s=5) for i in range(100)))
        await batcher.stop()
        return results

    assert run(main()) == [i * 2 for i in range(100)]
    assert sum(len(batch) for batch in seen) == 100
    assert max(len(batch) for batch in seen) == 16 and len(seen) < 100


def test_batches_never_exceed_the_row_limit_and_big_requests_run_alone():
    sizes: list[int] = []

    def record(payloads):
        sizes.append(sum(payloads))
        return list(payloads)

    async def main():
        batcher = MicroBatcher(record, max_batch_rows=10, max_wait_s=0.02)
        await batcher.start()
        rows = [3, 4, 5, 25, 2, 6, 1]
        await asyncio.gather(*(batcher.submit(n, n, timeout_s=5) for n in rows))
        await batcher.stop()

    run(main())
    assert sum(sizes) == 46
    assert [s for s in sizes if s > 10] == [25]  # alone, never merged with others


def test_one_failing_request_does_not_fail_the_others():
    def maybe_fail(payloads):
        return [ValueError(f"bad {p}") if p == 3 else p for p in payloads]

    async def main():
        batcher = MicroBatcher(maybe_fail, max_batch_rows=8, max_wait_s=0.02)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i, 1, timeout_s=5) for i in range(6)), return_exceptions=True)
        await batcher.stop()
        return results

    results = run(main())
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5]
    assert isinstance(results[3], ValueError) and str(results[3]) == "bad 3"


def test_deadline_is_respected_even_with_a_long_max_wait():
    async def main():
        batcher = MicroBatcher(lambda payloads: list(payloads), max_batch_rows=100, max_wait_s=5.0)
        await batcher.start()
        started = time.monotonic()
        result = await batcher.submit("x", 1, timeout_s=0.3)  # alone: must not wait the full 5 s
        waited = time.monotonic() - started
        await batcher.stop()
        return result, waited

    result, waited = run(main())
    assert result == "x" and waited < 1.0


def test_slow_model_times_out():
    async def main():
        batcher = MicroBatcher(lambda payloads: time.sleep(0.5) or list(payloads), max_batch_rows=4, max_wait_s=0)
        await batcher.start()
        with pytest.raises(DeadlineExceeded):
            await batcher.submit("x", 1, timeout_s=0.05)
        await batcher.stop()

    run(main())


def test_admission_refuses_what_could_not_be_served_in_time():
    """Offered far more than it can do in the deadline: the excess is refused at once with a
    retry hint; what is accepted finishes in time (no DeadlineExceeded)."""
    async def main():
        batcher = MicroBatcher(lambda payloads: time.sleep(0.05) or list(payloads), max_batch_rows=2, max_wait_s=0,
                               max_pending_rows=1000)
        await batcher.start()
        await batcher.submit("warm", 1, timeout_s=5)  # one forward pass measured
        started = time.monotonic()
        results = await asyncio.gather(*(batcher.submit(i, 1, timeout_s=0.8) for i in range(200)), return_exceptions=True)
        refused_in = time.monotonic() - started
        assert await batcher.submit("big", 5000, timeout_s=5) == "big"  # an idle server takes even an oversized request
        await batcher.stop()
        return results, refused_in

    results, seconds = run(main())
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert not any(isinstance(r, DeadlineExceeded) for r in results)
    assert 150 < len(refused) < 200 and all(r.retry_after_s >= 1 for r in refused)
    assert seconds < 1.5


def test_no_admission_limit_by_default():
    async def main():
        batcher = MicroBatcher(lambda payloads: list(payloads), max_batch_rows=2, max_wait_s=0)
        await batcher.start()
        out = await asyncio.gather(*(batcher.submit(i, 1, timeout_s=5) for i in range(300)))
        await batcher.stop()
        return out

    assert run(main()) == list(range(300))
