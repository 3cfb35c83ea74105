"""Lifecycle events: the hand-off from native threads to greenthreads, and which libvirt events
are state changes."""
import threading

import eventlet
import libvirt
from eventlet import patcher

from hostagent.handoff import NativeHandoff
from hostagent.lifecycle import lifecycle_state

native_threading = patcher.original("threading")


def test_items_put_by_native_threads_reach_a_greenthread_in_order():
    handoff = NativeHandoff()
    received = []

    def consume():
        while len(received) < 300:
            received.extend(handoff.get_batch())
    consumer = eventlet.spawn(consume)
    ticks = []
    ticker = eventlet.spawn(lambda: [ticks.append(eventlet.sleep(0.001)) for _ in range(20)])

    def produce():
        for i in range(300):
            handoff.put(i)
    producer = native_threading.Thread(target=produce)
    producer.start()
    with eventlet.Timeout(5):
        consumer.wait()
        ticker.wait()
    producer.join()
    assert received == list(range(300))
    assert len(ticks) == 20  # the hub kept running other greenthreads while the consumer waited
    handoff.close()


def test_waiting_consumer_does_not_block_the_hub():
    handoff = NativeHandoff()
    consumer = eventlet.spawn(handoff.get_batch)
    eventlet.sleep(0.05)  # consumer is now waiting on the pipe
    assert not consumer.dead
    threading_main = threading.get_ident()
    native_threading.Thread(target=lambda: handoff.put(("from", threading_main))).start()
    with eventlet.Timeout(5):
        assert consumer.wait() == [("from", threading_main)]
    handoff.close()


def test_state_changes():
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_STARTED, 0) == "running"
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_RESUMED, 0) == "running"
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_SUSPENDED, 0) == "paused"
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_STOPPED,
                           libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN) == "shutoff"
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_STOPPED,
                           libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED) == "shutoff"
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_STOPPED,
                           libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED) == "crashed"
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_CRASHED, 0) == "crashed"
    # Not state changes: definitions, the guest shutting down (STOPPED follows), a migration away.
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_DEFINED, 0) is None
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_UNDEFINED, 0) is None
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_SHUTDOWN, 0) is None
    assert lifecycle_state(libvirt.VIR_DOMAIN_EVENT_STOPPED,
                           libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED) is None
