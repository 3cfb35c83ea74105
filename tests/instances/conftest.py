import pytest
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from services.instances import scheduler
from tests.instances.fakes import NOW, POLICY


@pytest.fixture
def session(migrated_database):
    engine = make_engine(migrated_database("services.instances"))
    with sessionmaker(bind=engine, expire_on_commit=False)() as session:
        scheduler.record_heartbeat(session, {"host": "h1", "hypervisor": "TEST", "vcpus": 4,
                                             "memory_mib": 512}, NOW, POLICY)
        yield session
    engine.dispose()
