"""The network service's security-group entry points (a mixin of NetworkService). Logic is in
security_groups.py; the hosts' rules in host_rules.py."""
from nameko.rpc import rpc

from common import policy
from common.actors import load_actor
from common.errors import NotFound
from common.schemas import dump, load
from services.network import course_access, security_groups
from services.network.schemas import (
    CreateSecurityGroupRequest, InstanceSecurityGroupsRequest, ProjectIdSchema, SecurityGroupIdSchema,
    SecurityGroupRuleRequest, SecurityGroupSchema)


class SecurityGroupEntrypoints:
    @rpc
    def list_security_groups(self, actor, project_id):
        actor = load_actor(actor)
        project_id = load(ProjectIdSchema, {"project_id": project_id})["project_id"]
        policy.enforce(actor, "security_group:list", {"project_id": project_id},
                       hidden=policy.hidden_outside(actor, project_id), what="list this course's security groups")
        return dump(SecurityGroupSchema, security_groups.list_for(self.db, project_id), many=True)

    @rpc
    def create_security_group(self, actor, request):
        actor = load_actor(actor)
        request = load(CreateSecurityGroupRequest, request)
        project_id = request["project"]
        policy.enforce(actor, "security_group:create", {"project_id": project_id},
                       hidden=policy.hidden_outside(actor, project_id), what="create a security group in this course")
        group = security_groups.create(self.db, project_id, request["name"], request["description"])
        return dump(SecurityGroupSchema, security_groups.describe(self.db, group))

    @rpc
    def get_security_group(self, actor, group_id):
        group = self._group(load_actor(actor), group_id, "security_group:get", "look at this security group")
        return dump(SecurityGroupSchema, security_groups.describe(self.db, group))

    @rpc
    def delete_security_group(self, actor, group_id):
        group = self._group(load_actor(actor), group_id, "security_group:delete", "delete this security group")
        return dump(SecurityGroupSchema, security_groups.delete_group(self.db, group))

    @rpc
    def add_security_group_rule(self, actor, group_id, request):
        group = self._group(load_actor(actor), group_id, "security_group:update", "change this security group")
        security_groups.add_rule(self.db, group, load(SecurityGroupRuleRequest, request))
        self._push(security_groups.hosts_affected(self.db, group.id))
        return dump(SecurityGroupSchema, security_groups.describe(self.db, group))

    @rpc
    def remove_security_group_rule(self, actor, group_id, rule_id):
        group = self._group(load_actor(actor), group_id, "security_group:update", "change this security group")
        rule_id = load(SecurityGroupIdSchema, {"group_id": rule_id})["group_id"]
        if not security_groups.remove_rule(self.db, group, rule_id):
            raise NotFound(f"no rule {rule_id} in security group {group.name}")
        self._push(security_groups.hosts_affected(self.db, group.id))
        return dump(SecurityGroupSchema, security_groups.describe(self.db, group))

    @rpc
    def get_instance_security_groups(self, actor, instance_id):
        self.instances.get_instance(load_actor(actor), instance_id)   # NotFound/Forbidden: not theirs
        return dump(SecurityGroupSchema, [security_groups.describe(self.db, g)
                                          for g in security_groups.groups_of(self.db, str(instance_id))], many=True)

    @rpc
    def set_instance_security_groups(self, actor, instance_id, request):
        """Put a running (or stopped) instance in exactly these groups of its course, live."""
        actor = load_actor(actor)
        instance = self.instances.get_instance(actor, instance_id)
        policy.enforce(actor, "security_group:bind", {"project_id": instance["project"], "user_id": instance["user_id"]},
                       what="change this instance's security groups")
        names = load(InstanceSecurityGroupsRequest, request)["security_groups"]
        groups = security_groups.groups_by_name(self.db, instance["project"], names)
        security_groups.bind(self.db, instance["id"], groups)
        if instance.get("host"):
            self._place_if_unknown(instance["id"], instance["host"])
        self._push(self._hosts_of(instance["id"]))
        return dump(SecurityGroupSchema, [security_groups.describe(self.db, g) for g in groups], many=True)

    def _group(self, actor, group_id, action, what):
        group_id = load(SecurityGroupIdSchema, {"group_id": group_id})["group_id"]
        group = security_groups.get(self.db, group_id)
        return course_access.checked(actor, group, f"no security group {group_id}", action,
                                     {"project_id": group and group.project_id}, what)
