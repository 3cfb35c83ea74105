"""The store's tests run twice: each sample an `rrdtool update` of its file, and through a real
rrdcached (labcloud run's default), whose cached values every read must see."""
import pytest

from labcloud.rrdcached import RrdCachedDaemon


@pytest.fixture(scope="session", params=["direct", "rrdcached"])
def rrd_daemon(request, tmp_path_factory):
    """None (direct writes), or the address of a private rrdcached (one for the session: the
    store sends absolute paths, and its stop takes a second)."""
    if request.param == "direct":
        yield None
        return
    daemon = RrdCachedDaemon(str(tmp_path_factory.mktemp("rrdcached")), str(tmp_path_factory.getbasetemp())).start()
    try:
        yield daemon.address
    finally:
        daemon.stop()
