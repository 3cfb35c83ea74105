"""A root disk deleted while its host is still making it (a delete saga racing a create saga):
nothing stays on the host, and the create says so instead of answering with a disk that is gone."""
import uuid

import pytest
from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import Conflict
from services.storage import disks


class Host:
    """A host whose create_volume lets a delete_root_disk (another worker, its own session) run
    while it works, as a slow host would."""

    def __init__(self, engine):
        self.volumes, self.engine, self.during_create = set(), engine, None

    def __call__(self, _host):
        return self

    def get_host_info(self):
        return {"pool": "labcloud"}

    def ensure_image(self, request):
        return {"path": f"/pool/image-{request['image_id']}.qcow2"}

    def create_volume(self, request):
        if self.during_create:
            self.during_create()
        self.volumes.add(request["name"])
        return {"path": f"/pool/{request['name']}", "capacity_bytes": request["capacity_bytes"]}

    def delete_volume(self, request):
        present = request["name"] in self.volumes
        self.volumes.discard(request["name"])
        return {"deleted": present}


@pytest.fixture
def engine(migrated_database):
    made = make_engine(migrated_database("services.storage"))
    yield made
    made.dispose()


def session_of(engine):
    return sessionmaker(bind=engine, expire_on_commit=False)()


def test_a_disk_deleted_while_its_host_makes_it_is_removed_from_the_host(engine):
    host, instance_id = Host(engine), str(uuid.uuid4())
    request = {"instance_id": instance_id, "image_id": 1, "host": "h1", "size_gib": 1}

    def delete_meanwhile():
        with session_of(engine) as other_worker:
            assert disks.delete_root_disk(other_worker, host, instance_id) is True
    host.during_create = delete_meanwhile
    with session_of(engine) as session:
        with pytest.raises(Conflict) as err:
            disks.create_root_disk(session, host, request, "/srv/labcloud")
        assert err.value.fields == {"instance_id": ["deleted meanwhile"]}
        assert host.volumes == set() and disks.list_volumes(session) == []

        host.during_create = None  # asked again (a redelivered create): made as usual
        made = disks.create_root_disk(session, host, request, "/srv/labcloud")
        assert made["state"] == "available" and host.volumes == {made["name"]}
