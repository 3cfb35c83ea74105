"""The network service's floating-IP entry points (a mixin of NetworkService: one service, its
entry points in two files). Logic is in floating.py; the hosts' rules in host_rules.py."""
from nameko.rpc import rpc

from common import policy
from common.actors import load_actor
from common.errors import NotFound
from common.schemas import dump, load
from services.network import course_access, floating, subnets
from services.network.schemas import (
    AllocateFloatingIpRequest, AssociateFloatingIpRequest, CreateFloatingPoolRequest, FloatingIpIdSchema,
    FloatingIpSchema, ProjectIdSchema, SubnetIdSchema, SubnetSchema)


class FloatingIpEntrypoints:
    # ----- pools (admins) -----
    @rpc
    def list_floating_pools(self, actor):
        policy.enforce(load_actor(actor), "floating_pool:list", what="list floating pools")
        return dump(SubnetSchema, subnets.list_subnets(self.db, "floating"), many=True)

    @rpc
    def create_floating_pool(self, actor, request):
        policy.enforce(load_actor(actor), "floating_pool:create", what="create a floating pool")
        request = load(CreateFloatingPoolRequest, request)
        return dump(SubnetSchema, subnets.create_subnet(self.db, {**request, "purpose": "floating"}))

    @rpc
    def delete_floating_pool(self, actor, pool_id):
        policy.enforce(load_actor(actor), "floating_pool:delete", what="delete a floating pool")
        pool_id = load(SubnetIdSchema, {"subnet_id": pool_id})["subnet_id"]
        return dump(SubnetSchema, subnets.delete_subnet(self.db, pool_id, "floating"))

    @rpc
    def get_project_usage(self, project_id):
        """Internal (accounts' usage): {"project": {floating_ips}, "users": {"<user id>": {...}}}."""
        project_id = load(ProjectIdSchema, {"project_id": project_id})["project_id"]
        usage = floating.usage(self.db, project_id)
        return {"project": usage["project"], "users": {str(k): v for k, v in usage["users"].items()}}

    # ----- floating IPs (a course's members) -----
    @rpc
    def allocate_floating_ip(self, actor, request):
        actor = load_actor(actor)
        request = load(AllocateFloatingIpRequest, request)
        project_id = request["project"]
        policy.enforce(actor, "floating_ip:create", {"project_id": project_id},
                       hidden=policy.hidden_outside(actor, project_id),
                       what="allocate a floating IP for this course")
        limits = self.accounts.get_quota_limits(project_id, actor["id"])
        allocated = floating.allocate(self.db, project_id, actor["id"], limits, request["pool"])
        return dump(FloatingIpSchema, floating.describe(self.db, allocated))

    @rpc
    def list_floating_ips(self, actor):
        actor = load_actor(actor)
        policy.enforce(actor, "floating_ip:list", what="list floating IPs")
        projects = None if policy.is_admin(actor) else policy.project_ids(actor)
        return dump(FloatingIpSchema, [floating.describe(self.db, f) for f in floating.list_for(self.db, projects)],
                    many=True)

    @rpc
    def get_floating_ip(self, actor, floating_ip_id):
        found = self._floating(load_actor(actor), floating_ip_id, "floating_ip:get", "look at this floating IP")
        return dump(FloatingIpSchema, floating.describe(self.db, found))

    @rpc
    def associate_floating_ip(self, actor, floating_ip_id, request):
        actor = load_actor(actor)
        found = self._floating(actor, floating_ip_id, "floating_ip:associate", "associate this floating IP")
        instance_id = str(load(AssociateFloatingIpRequest, request)["instance"])
        instance = self.instances.get_instance(actor, instance_id)   # NotFound/Forbidden: not theirs
        if instance["project"] != found.project_id:
            raise NotFound(f"no instance {instance_id} in the floating IP's course", {"instance": ["not in this course"]})
        if instance.get("host"):
            self._place_if_unknown(instance_id, instance["host"])
        hosts = floating.associate(self.db, found, instance_id)
        self._push(hosts)
        return dump(FloatingIpSchema, floating.describe(self.db, found))

    @rpc
    def disassociate_floating_ip(self, actor, floating_ip_id):
        found = self._floating(load_actor(actor), floating_ip_id, "floating_ip:associate",
                               "disassociate this floating IP")
        self._push(floating.disassociate(self.db, found))
        return dump(FloatingIpSchema, floating.describe(self.db, found))

    @rpc
    def release_floating_ip(self, actor, floating_ip_id):
        found = self._floating(load_actor(actor), floating_ip_id, "floating_ip:delete", "release this floating IP")
        described, hosts = floating.release(self.db, found)
        self._push(hosts)
        return dump(FloatingIpSchema, described)

    def _floating(self, actor, floating_ip_id, action, what):
        floating_ip_id = load(FloatingIpIdSchema, {"floating_ip_id": floating_ip_id})["floating_ip_id"]
        found = floating.find(self.db, floating_ip_id)
        target = {"project_id": found and found.project_id, "user_id": found and found.user_id}
        return course_access.checked(actor, found, f"no floating IP {floating_ip_id}", action, target, what,
                                     hide_refusal=True)
