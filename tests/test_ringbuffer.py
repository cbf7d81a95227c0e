"""The callback's ring buffer: FIFO order, wrap-around, counted overflows, a producer thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asc.ringbuffer import RingBuffer


def ramp(start: int, n: int, channels: int = 1) -> np.ndarray:
    values = np.arange(start, start + n, dtype=np.float32)
    offsets = np.arange(channels, dtype=np.float32) / np.float32(10)
    return np.repeat(values[:, None], channels, axis=1) + offsets


def test_fifo_across_the_wrap():
    ring = RingBuffer(8, channels=2)
    ring.write(ramp(0, 6, 2))
    np.testing.assert_array_equal(ring.read(4), ramp(0, 4, 2))
    ring.write(ramp(6, 5, 2))  # crosses the end of the storage
    assert ring.available == 7
    np.testing.assert_array_equal(ring.read(), ramp(4, 7, 2))
    assert ring.available == 0 and ring.overflows == 0


def test_read_returns_a_copy():
    ring = RingBuffer(4)
    ring.write(ramp(0, 2))
    out = ring.read()
    ring.write(ramp(10, 4))
    np.testing.assert_array_equal(out, ramp(0, 2))


def test_overflow_drops_the_newest_and_counts():
    ring = RingBuffer(5)
    assert ring.write(ramp(0, 3)) == 3
    assert ring.write(ramp(3, 4)) == 2  # only two frames fit
    assert ring.write(ramp(7, 1)) == 0  # full
    assert (ring.overflows, ring.dropped) == (2, 3)
    np.testing.assert_array_equal(ring.read(), ramp(0, 5))


def test_empty_read_and_bad_sizes():
    ring = RingBuffer(3, channels=2)
    assert ring.read().shape == (0, 2)
    with pytest.raises(ValueError):
        RingBuffer(0)


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 40),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 50)), max_size=40),
)
def test_matches_a_bounded_fifo(capacity, ops):
    """Any interleaving of writes and reads gives what a list-based FIFO that drops gives."""
    ring, model, counter = RingBuffer(capacity), [], 0
    for is_write, n in ops:
        if is_write:
            block = ramp(counter, n)
            counter += n
            kept = min(n, capacity - len(model))
            model.extend(block[:kept, 0].tolist())
            assert ring.write(block) == kept
        else:
            out = ring.read(n)
            expected, model = model[:n], model[n:]
            np.testing.assert_array_equal(out[:, 0], np.array(expected, dtype=np.float32))
        assert ring.available == len(model)


def test_producer_thread_loses_nothing_when_the_consumer_keeps_up():
    """A callback-like thread writing 64-frame blocks while the consumer reads concurrently."""
    ring = RingBuffer(1024, channels=1)
    total, block = 64 * 400, 64
    received: list[np.ndarray] = []

    def producer() -> None:
        for start in range(0, total, block):
            while ring.capacity - ring.available < block:  # a real callback would drop instead
                time.sleep(0.0001)
            ring.write(ramp(start, block))

    thread = threading.Thread(target=producer)
    thread.start()
    got = 0
    while got < total:
        out = ring.read()
        got += out.shape[0]
        received.append(out)
        if not out.shape[0]:
            time.sleep(0.0005)
    thread.join()
    np.testing.assert_array_equal(np.concatenate(received), ramp(0, total))
    assert ring.overflows == 0
