"""Who may act on a course's floating IP or security group: someone outside the course learns
nothing (NotFound, whether or not it exists), then the policy table decides (common/policy.py)."""
from common import policy
from common.errors import NotFound


def checked(actor, found, missing, action, target, what, hide_refusal=False):
    """`found` (None: it does not exist) when `actor` may do `action` on it; `target` the policy's
    target. `hide_refusal`: a refusal inside the course is a NotFound too (a floating IP is its
    allocator's, as an instance is its owner's)."""
    if found is None or not (policy.is_admin(actor) or policy.project_role(actor, target["project_id"])):
        raise NotFound(missing)
    policy.enforce(actor, action, target, hidden=missing if hide_refusal else None, what=what)
    return found
