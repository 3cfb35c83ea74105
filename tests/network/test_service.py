"""The network service over a real RabbitMQ node and a migrated SQLite database."""
import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import InvalidInput, NotFound
from services.network.service import NetworkService

ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}


@pytest.fixture
def network(container_factory, service_config, migrated_database):
    config = service_config(DATABASE_URL=migrated_database("services.network"))
    container = container_factory(NetworkService, config)
    container.start()
    return config


def test_allocate_and_release_over_rpc(network):
    with ServiceRpcProxy("network", network) as rpc:
        first = rpc.allocate_address({"owner": "inst-1"})
        assert first["ip"] == "10.99.0.2" and first["mac"] == "aa:00:0a:63:00:02"
        assert rpc.get_address("inst-1")["ip"] == first["ip"]
        assert rpc.release_address({"owner": "inst-1"}) == {"released": True}
        assert rpc.release_address({"owner": "inst-1"}) == {"released": False}
        assert rpc.get_address("inst-1") is None
        assert rpc.allocate_address({"owner": "inst-2"})["ip"] == first["ip"]


def test_bad_payload_names_the_field(network):
    with ServiceRpcProxy("network", network) as rpc:
        with pytest.raises(InvalidInput) as err:
            rpc.allocate_address({"owner": "", "colour": "red"})
        assert set(err.value.fields) == {"owner", "colour"}
        with pytest.raises(NotFound):
            rpc.allocate_address({"owner": "x", "subnet": "nope"})
        with pytest.raises(InvalidInput) as err:
            rpc.create_subnet(ADMIN, {"name": "pub", "cidr": "8.8.8.0/24"})
        assert "cidr" in err.value.fields


STUDENT = {"id": 7, "username": "ada", "role": "user", "projects": [{"id": 30, "role": "member"}]}


def test_subnets_over_rpc_for_admins_only(network):
    from common.errors import Conflict, Forbidden
    with ServiceRpcProxy("network", network) as rpc:
        for call in (lambda: rpc.list_subnets(STUDENT), lambda: rpc.create_subnet(STUDENT, {"name": "x", "cidr": "10.70.0.0/24"}),
                     lambda: rpc.get_subnet(STUDENT, 1), lambda: rpc.list_subnet_macs(STUDENT, 1),
                     lambda: rpc.reserve_address(STUDENT, 1, {"ip": "10.99.0.9"}), lambda: rpc.delete_subnet(STUDENT, 1)):
            with pytest.raises(Forbidden):
                call()
        made = rpc.create_subnet(ADMIN, {"name": "lab", "cidr": "10.70.0.0/28", "allocation_start": "10.70.0.5",
                                         "reserved": ["10.70.0.7"], "dns_servers": ["10.70.0.2"]})
        assert (made["allocation_start"], made["allocation_end"], made["capacity"]) == ("10.70.0.5", "10.70.0.14", 9)
        assert [s["name"] for s in rpc.list_subnets(ADMIN)] == ["default", "lab"]
        assert rpc.allocate_address({"owner": "i-1", "subnet": "lab"})["ip"] == "10.70.0.5"
        assert rpc.reserve_address(ADMIN, made["id"], {"ip": "10.70.0.6"})["reserved"] == ["10.70.0.6", "10.70.0.7"]
        assert rpc.allocate_address({"owner": "i-2", "subnet": "lab"})["ip"] == "10.70.0.8"
        assert [m["ip"] for m in rpc.list_subnet_macs(ADMIN, made["id"])][:3] == ["10.70.0.5", "10.70.0.8", "10.70.0.9"]
        with pytest.raises(Conflict):
            rpc.delete_subnet(ADMIN, made["id"])
        with pytest.raises(InvalidInput) as bad:
            rpc.unreserve_address(ADMIN, made["id"], "10.70.0.999")
        assert "ip" in bad.value.fields
        with pytest.raises(NotFound):
            rpc.get_subnet(ADMIN, 999)
