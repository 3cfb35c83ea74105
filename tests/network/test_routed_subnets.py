"""Routed subnets (issue 11) through the real network service over RabbitMQ: the mode/host rules of
a new subnet, and which subnet an instance's address comes from, depending on its host."""
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import Conflict, InvalidInput
from services.network.service import NetworkService

ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}
MANAGER = {"id": 9, "username": "tea", "role": "user", "projects": [{"id": 40, "role": "manager"}]}


@pytest.fixture
def network(container_factory, service_config, migrated_database):
    config = service_config(DATABASE_URL=migrated_database("services.network"))
    container_factory(NetworkService, config).start()
    return config


def refused_fields(call):
    with pytest.raises(InvalidInput) as err:
        call()
    return set(err.value.fields)


def test_mode_and_host_are_checked_and_named(network):
    with ServiceRpcProxy("network", network) as rpc:
        assert refused_fields(lambda: rpc.create_subnet(
            ADMIN, {"name": "r", "cidr": "10.80.0.0/24", "mode": "routed"})) == {"host"}
        assert refused_fields(lambda: rpc.create_subnet(
            ADMIN, {"name": "r", "cidr": "10.80.0.0/24", "host": "h1"})) == {"host"}
        assert refused_fields(lambda: rpc.create_subnet(
            ADMIN, {"name": "r", "cidr": "10.80.0.0/24", "mode": "tunnelled"})) == {"mode"}
        assert refused_fields(lambda: rpc.create_subnet(
            ADMIN, {"name": "r", "cidr": "10.80.0.0/24", "mode": "routed", "host": "h1",
                    "is_default": True})) == {"is_default"}
        # A provider's routed subnet may be public; a bridged one may not.
        assert refused_fields(lambda: rpc.create_subnet(ADMIN, {"name": "p", "cidr": "5.9.100.0/28"})) == {"cidr"}
        public = rpc.create_subnet(ADMIN, {"name": "hetzner", "cidr": "5.9.100.0/28", "mode": "routed",
                                           "host": "h2"})
        assert (public["mode"], public["host"], public["gateway"]) == ("routed", "h2", "5.9.100.1")
        default = next(s for s in rpc.list_subnets(ADMIN) if s["name"] == "default")
        assert (default["mode"], default["host"]) == ("bridged", None)   # migration 0005's defaults
        assert rpc.get_subnet(ADMIN, public["id"])["host"] == "h2"


def test_routed_subnet_serves_only_its_hosts_instances(network):
    with ServiceRpcProxy("network", network) as rpc:
        rpc.create_subnet(ADMIN, {"name": "r1", "cidr": "10.81.0.0/28", "mode": "routed", "host": "h1"})
        rpc.create_subnet(ADMIN, {"name": "r1b", "cidr": "10.82.0.0/28", "mode": "routed", "host": "h1"})

        on_h1 = rpc.allocate_address({"owner": "i-1", "host": "h1"})
        assert (on_h1["subnet"], on_h1["ip"], on_h1["mode"], on_h1["network"]) == ("r1", "10.81.0.2", "routed", "lcr-r1")
        assert on_h1["gateway"] == "10.81.0.1" and on_h1["prefixlen"] == 28
        on_h2 = rpc.allocate_address({"owner": "i-2", "host": "h2"})
        assert (on_h2["subnet"], on_h2["mode"], on_h2["network"]) == ("default", "bridged", None)
        unplaced = rpc.allocate_address({"owner": "i-3"})
        assert unplaced["subnet"] == "default"
        # Named explicitly: the second routed subnet of h1 is fine for h1, never for another host.
        assert rpc.allocate_address({"owner": "i-4", "host": "h1", "subnet": "r1b"})["ip"] == "10.82.0.2"
        with pytest.raises(Conflict) as err:
            rpc.allocate_address({"owner": "i-5", "host": "h2", "subnet": "r1"})
        assert set(err.value.fields) == {"subnet"}
        assert rpc.get_address("i-5") is None
        # The same owner again: the same address (idempotent), still on its host.
        assert rpc.allocate_address({"owner": "i-1", "host": "h1"})["ip"] == "10.81.0.2"
        # The guest cannot move off the host its subnet is routed to (live migration asks this first).
        with pytest.raises(Conflict) as err:
            rpc.place_address({"owner": "i-1", "host": "h1", "moving_to": "h2"})
        assert set(err.value.fields) == {"host"}
        assert rpc.place_address({"owner": "i-2", "host": "h2", "moving_to": "h3"}) == {"placed": True}


def test_full_routed_subnet_does_not_spill_into_the_default(network):
    from common.errors import CapacityExhausted
    with ServiceRpcProxy("network", network) as rpc:
        rpc.create_subnet(ADMIN, {"name": "tiny", "cidr": "10.83.0.0/29", "mode": "routed", "host": "h7",
                                  "allocation_end": "10.83.0.3"})
        assert [rpc.allocate_address({"owner": f"t-{n}", "host": "h7"})["ip"] for n in range(2)] == \
            ["10.83.0.2", "10.83.0.3"]
        with pytest.raises(CapacityExhausted) as err:
            rpc.allocate_address({"owner": "t-2", "host": "h7"})
        assert "subnet" in err.value.fields


def test_course_block_of_a_routed_subnet(network):
    """A course's block in a routed subnet is used by the course's guests on that host; its block
    in the default subnet is not used for guests on a host with a routed subnet."""
    with ServiceRpcProxy("network", network) as rpc:
        rpc.create_subnet(ADMIN, {"name": "rb", "cidr": "10.84.0.0/24", "mode": "routed", "host": "h1"})
        block = rpc.reserve_subnet_block(MANAGER, 40, {"prefixlen": 28, "subnet": "rb"})
        assert block["cidr"] == "10.84.0.16/28"
        assert rpc.allocate_address({"owner": "c-1", "project": 40, "host": "h1"})["ip"] == "10.84.0.16"
        assert rpc.allocate_address({"owner": "c-2", "project": 41, "host": "h1"})["ip"] == "10.84.0.2"


class FakeHostAgent:
    """Stands in for the agent of host h9: records what the network service asks it."""
    name = "hostagent_h9"
    asked = []

    @rpc
    def remove_routed_network(self, request):
        FakeHostAgent.asked.append(request)
        return {"removed": True}


def test_a_deleted_routed_subnet_goes_from_its_host(network, container_factory):
    container_factory(FakeHostAgent, network).start()
    FakeHostAgent.asked.clear()
    with ServiceRpcProxy("network", network) as rpc_proxy:
        assert refused_fields(lambda: rpc_proxy.create_subnet(
            ADMIN, {"name": "r", "cidr": "10.85.0.0/24", "mode": "routed", "host": "Bad_Host"})) == {"host"}
        made = rpc_proxy.create_subnet(ADMIN, {"name": "gone", "cidr": "10.85.0.0/24", "mode": "routed", "host": "h9"})
        rpc_proxy.delete_subnet(ADMIN, made["id"])
        assert FakeHostAgent.asked == [{"name": "lcr-gone"}]
        # A host no agent ever served: nothing was made there, the delete goes through.
        other = rpc_proxy.create_subnet(ADMIN, {"name": "nowhere", "cidr": "10.86.0.0/24", "mode": "routed",
                                                "host": "never-seen"})
        assert rpc_proxy.delete_subnet(ADMIN, other["id"])["name"] == "nowhere"
        assert [s["name"] for s in rpc_proxy.list_subnets(ADMIN)] == ["default"]
