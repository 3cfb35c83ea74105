"""Whose metrics an actor may read. The metrics service knows no owners: the instances service
says which instances the actor may see (owner, the course's managers, admins: instance:get), and
the policy table which readers get every instance and the hosts."""
from common import policy
from common.errors import Forbidden


def readable_instances(actor, instances_rpc, instance_id=None):
    """None when the actor may read every instance's metrics (deleted ones too, for their
    retention time); else the ids it may read: `instance_id` alone (NotFound from the instances
    service when it is not the actor's to see), or every instance the actor sees."""
    if policy.allowed(actor, "metrics:all_instances"):
        return None
    if instance_id is not None:
        instances_rpc.get_instance(actor, instance_id)  # raises NotFound unless visible
        return [instance_id]
    return [instance["id"] for instance in instances_rpc.list_instances(actor)]


def check_hosts(actor, field="host"):
    """Forbidden naming `field` (the request's word for the host) unless the actor is an admin."""
    if not policy.allowed(actor, "metrics:hosts"):
        raise Forbidden("only an administrator may read the hosts' metrics",
                        {field: ["administrators only"]})
