"""next_seq: strictly increasing across native threads and greenthreads, never behind the clock."""
import time

import eventlet
from eventlet import patcher

from hostagent.sequence import next_seq

native_threading = patcher.original("threading")


def test_never_below_the_clock_and_always_increasing():
    before = time.time_ns()
    first = next_seq()
    second = next_seq()
    assert before <= first < second
    assert next_seq() >= time.time_ns() - 10**9  # not stuck on an old value either


def test_unique_and_ordered_from_native_threads_and_greenthreads_at_once():
    taken = {}  # taker -> the numbers it got, in the order it got them

    def take(name, count=2000):
        taken[name] = [next_seq() for _ in range(count)]

    natives = [native_threading.Thread(target=take, args=(f"native-{i}",)) for i in range(4)]
    for thread in natives:
        thread.start()
    greens = [eventlet.spawn(take, f"green-{i}") for i in range(4)]
    for green in greens:
        green.wait()
    for thread in natives:
        thread.join()
    everything = [n for numbers in taken.values() for n in numbers]
    assert len(set(everything)) == len(everything) == 8 * 2000
    for numbers in taken.values():
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
