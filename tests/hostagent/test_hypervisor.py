"""The connection owner: calls go through native threads and a dead connection is reopened."""
import pytest
from eventlet import tpool

from common.errors import HostOperationFailed
from hostagent import hypervisor
from hostagent.hypervisor import HypervisorConnection


@pytest.fixture
def connection():
    made = HypervisorConnection("test:///default")
    yield made
    made.close()


def test_connection_is_proxied_and_event_loop_runs(connection):
    assert isinstance(connection.conn, tpool.Proxy)
    assert connection.conn.getType() == "TEST"
    # Objects the proxied connection returns are proxied too (autowrap), so their calls are off the hub.
    assert isinstance(connection.conn.lookupByName("test"), tpool.Proxy)
    assert hypervisor._event_loop_thread.is_alive()
    assert connection.is_test_driver


def test_run_moves_the_operation_to_a_native_thread(connection):
    import threading
    main = threading.get_ident()
    assert connection.run(lambda conn: (conn.getType(), threading.get_ident() != main)) == ("TEST", True)


def test_libvirt_errors_become_host_operation_failed(connection):
    with pytest.raises(HostOperationFailed) as err:
        connection.run(lambda conn: conn.lookupByName("no-such-domain"))
    assert "test:///default" in str(err.value) and "not found" in str(err.value)


def test_dead_connection_is_reopened(connection):
    connection.run(lambda conn: conn.getType())
    dead = connection._raw
    dead.close()  # as if libvirtd went away: isAlive() now fails
    assert connection.run(lambda conn: conn.getType()) == "TEST"
    assert connection._raw is not dead


def test_unreachable_hypervisor_is_a_clear_error():
    broken = HypervisorConnection("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    with pytest.raises(HostOperationFailed) as err:
        broken.run(lambda conn: conn.getType())
    assert "cannot connect" in str(err.value)
