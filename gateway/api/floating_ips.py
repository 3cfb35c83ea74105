"""Floating IPs and security groups (the network service): pools are the admins', addresses and
groups a course's."""
from gateway.api.registry import NETWORK, route


@route("GET", "/api/v1/floating-pools", tag="floating-ips",
       summary="The floating IP pools: their range and how many addresses are free",
       response=NETWORK + "SubnetSchema", many=True)
def list_floating_pools(rpc, actor):
    return rpc.network.list_floating_pools(actor)


@route("POST", "/api/v1/floating-pools", tag="floating-ips",
       summary="Define a pool of floating (public) addresses (admin)",
       body=NETWORK + "CreateFloatingPoolRequest", response=NETWORK + "SubnetSchema", status=201, errors=(409,))
def create_floating_pool(rpc, actor, body):
    return rpc.network.create_floating_pool(actor, body)


@route("DELETE", "/api/v1/floating-pools/<id:pool_id>", tag="floating-ips",
       summary="Delete a floating pool none of whose addresses is allocated (admin)",
       response=NETWORK + "SubnetSchema", errors=(409,))
def delete_floating_pool(rpc, actor, pool_id):
    return rpc.network.delete_floating_pool(actor, pool_id)


@route("POST", "/api/v1/floating-ips", tag="floating-ips",
       summary="Allocate a floating IP for a course (its members; quota floating_ips)",
       body=NETWORK + "AllocateFloatingIpRequest", response=NETWORK + "FloatingIpSchema", status=201,
       errors=(409, 503))
def allocate_floating_ip(rpc, actor, body):
    return rpc.network.allocate_floating_ip(actor, body)


@route("GET", "/api/v1/floating-ips", tag="floating-ips",
       summary="The floating IPs of my courses (all for an admin)",
       response=NETWORK + "FloatingIpSchema", many=True)
def list_floating_ips(rpc, actor):
    return rpc.network.list_floating_ips(actor)


@route("GET", "/api/v1/floating-ips/<id:floating_ip_id>", tag="floating-ips", summary="A floating IP",
       response=NETWORK + "FloatingIpSchema")
def get_floating_ip(rpc, actor, floating_ip_id):
    return rpc.network.get_floating_ip(actor, floating_ip_id)


@route("POST", "/api/v1/floating-ips/<id:floating_ip_id>/associate", tag="floating-ips",
       summary="Send a floating IP's traffic to an instance of the same course (NAT on its host)",
       body=NETWORK + "AssociateFloatingIpRequest", response=NETWORK + "FloatingIpSchema", errors=(409,))
def associate_floating_ip(rpc, actor, floating_ip_id, body):
    return rpc.network.associate_floating_ip(actor, floating_ip_id, body)


@route("POST", "/api/v1/floating-ips/<id:floating_ip_id>/disassociate", tag="floating-ips",
       summary="Take a floating IP off its instance (it stays the course's)",
       response=NETWORK + "FloatingIpSchema")
def disassociate_floating_ip(rpc, actor, floating_ip_id):
    return rpc.network.disassociate_floating_ip(actor, floating_ip_id)


@route("DELETE", "/api/v1/floating-ips/<id:floating_ip_id>", tag="floating-ips",
       summary="Release a floating IP back to its pool (disassociated first)",
       response=NETWORK + "FloatingIpSchema")
def release_floating_ip(rpc, actor, floating_ip_id):
    return rpc.network.release_floating_ip(actor, floating_ip_id)


@route("GET", "/api/v1/projects/<id:project_id>/security-groups", tag="security-groups",
       summary="A course's security groups and their rules (its members); `default` is made on first use",
       response=NETWORK + "SecurityGroupSchema", many=True)
def list_security_groups(rpc, actor, project_id):
    return rpc.network.list_security_groups(actor, project_id)


@route("POST", "/api/v1/security-groups", tag="security-groups",
       summary="Create a security group in a course (its managers); it allows nothing until rules are added",
       body=NETWORK + "CreateSecurityGroupRequest", response=NETWORK + "SecurityGroupSchema", status=201,
       errors=(409,))
def create_security_group(rpc, actor, body):
    return rpc.network.create_security_group(actor, body)


@route("GET", "/api/v1/security-groups/<id:group_id>", tag="security-groups",
       summary="A security group, its rules and its instances", response=NETWORK + "SecurityGroupSchema")
def get_security_group(rpc, actor, group_id):
    return rpc.network.get_security_group(actor, group_id)


@route("DELETE", "/api/v1/security-groups/<id:group_id>", tag="security-groups",
       summary="Delete a security group no instance is in and no other rule names (not `default`)",
       response=NETWORK + "SecurityGroupSchema", errors=(409,))
def delete_security_group(rpc, actor, group_id):
    return rpc.network.delete_security_group(actor, group_id)


@route("POST", "/api/v1/security-groups/<id:group_id>/rules", tag="security-groups",
       summary="Allow traffic: ingress from, or egress to, a CIDR or a group's members; applied live on the hosts",
       body=NETWORK + "SecurityGroupRuleRequest", response=NETWORK + "SecurityGroupSchema", status=201)
def add_security_group_rule(rpc, actor, group_id, body):
    return rpc.network.add_security_group_rule(actor, group_id, body)


@route("DELETE", "/api/v1/security-groups/<id:group_id>/rules/<id:rule_id>", tag="security-groups",
       summary="Remove a rule; applied live on the hosts", response=NETWORK + "SecurityGroupSchema")
def remove_security_group_rule(rpc, actor, group_id, rule_id):
    return rpc.network.remove_security_group_rule(actor, group_id, rule_id)


@route("GET", "/api/v1/instances/<uuid:instance_id>/security-groups", tag="security-groups",
       summary="The security groups an instance is in", response=NETWORK + "SecurityGroupSchema", many=True)
def get_instance_security_groups(rpc, actor, instance_id):
    return rpc.network.get_instance_security_groups(actor, instance_id)


@route("PUT", "/api/v1/instances/<uuid:instance_id>/security-groups", tag="security-groups",
       summary="Put an instance in exactly these groups of its course, live",
       body=NETWORK + "InstanceSecurityGroupsRequest", response=NETWORK + "SecurityGroupSchema", many=True)
def set_instance_security_groups(rpc, actor, instance_id, body):
    return rpc.network.set_instance_security_groups(actor, instance_id, body)
