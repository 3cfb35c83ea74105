"""The network service over a real RabbitMQ node and a migrated SQLite database."""
import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import InvalidInput, NotFound
from services.network.service import NetworkService


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
            rpc.create_subnet({"name": "pub", "cidr": "8.8.8.0/24"})
        assert "cidr" in err.value.fields
