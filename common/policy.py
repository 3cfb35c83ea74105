"""The policy table: who may do what (oslo.policy's idea, as code). The one place that says it.

Every user-facing RPC of every service asks `enforce` (or `allowed`) with an action named here and
the target it acts on; the gateway never decides. An action missing from the table is refused
(default deny), and tests/test_policy.py checks that every action a service asks for is listed.

Rules are tuples of the principals that may act, any one suffices:
  admin      the actor's global role is admin
  owner      the target's `user_id` is the actor (for a user target: the user themself)
  manager    the actor is a manager of the target's `project_id`
  member     the actor is a member or a manager of the target's `project_id`
  anyone     any authenticated actor (lists are then filtered to what the actor may see)
A target is a dict with the keys a rule needs: `user_id`, `project_id`.
"""
from common.errors import Forbidden, InvalidInput, NotFound

ADMIN, OWNER, MANAGER, MEMBER, ANYONE = "admin", "owner", "manager", "member", "anyone"

POLICY = {
    # users (accounts)
    "user:list": (ADMIN,),
    "user:get": (ADMIN, OWNER),
    "user:create": (ADMIN,),
    "user:import": (ADMIN, MANAGER),          # a manager imports into a course they manage
    "user:approve": (ADMIN,),
    "user:reject": (ADMIN,),
    "user:suspend": (ADMIN,),
    "user:enable": (ADMIN,),
    "user:delete": (ADMIN,),
    "user:password:change": (OWNER,),
    "user:password:reset": (ADMIN,),
    "user:token:list": (ADMIN, OWNER),
    "user:token:revoke": (ADMIN, OWNER),
    # projects (courses) (accounts)
    "project:create": (ADMIN,),
    "project:list": (ANYONE,),                # filtered: an admin sees all, others their own
    "project:get": (ADMIN, MEMBER),
    "project:update": (ADMIN, MANAGER),       # description and defaults
    "project:delete": (ADMIN,),
    "project:member:list": (ADMIN, MANAGER),
    "project:member:add": (ADMIN, MANAGER),   # as member; naming managers is project:manager:set
    "project:member:remove": (ADMIN, MANAGER),
    "project:manager:set": (ADMIN,),
    "project:quota:get": (ADMIN, MEMBER),
    "project:quota:set": (ADMIN,),
    "project:usage:get": (ADMIN, MEMBER),
    # SSH keys (accounts)
    "key:create": (ANYONE,),                  # one's own; sharing it with a project needs member
    "key:share": (ADMIN, MEMBER),
    "key:list": (ANYONE,),                    # filtered: own keys and those shared with my projects
    "key:get": (ADMIN, OWNER, MEMBER),        # member: of the project the key is shared with
    "key:delete": (ADMIN, OWNER),
    # audit log (accounts)
    "audit:list": (ADMIN,),
    # instances
    "instance:create": (ADMIN, MEMBER),
    "instance:list": (ANYONE,),               # filtered: own, and all of the projects I manage
    "instance:get": (ADMIN, OWNER, MANAGER),
    "instance:stop": (ADMIN, OWNER, MANAGER),
    "instance:start": (ADMIN, OWNER, MANAGER),
    "instance:reboot": (ADMIN, OWNER, MANAGER),
    "instance:delete": (ADMIN, OWNER, MANAGER),
    "instance:console": (ADMIN, OWNER, MANAGER),
    "instance:set_resources": (ADMIN, OWNER),
    "instance:resize": (ADMIN, OWNER),         # the owner pays (quota), as for set_resources; a teacher asks them or an admin
    "instance:migrate": (ADMIN,),              # where a guest runs is the admins' business
    "instance:metrics": (ADMIN, OWNER, MANAGER),
    "instance:actions": (ADMIN, OWNER, MANAGER),
    # metrics (rrd_updates, vm_rrd, graphs): instances as instance:get, checked by the instances
    # service; every VM at once and the hosts' own metrics are the admins'
    "metrics:all_instances": (ADMIN,),
    "metrics:hosts": (ADMIN,),
    # data volumes and their snapshots (storage): as instances, the owner, the course's managers, admins
    "volume:create": (ADMIN, MEMBER),
    "volume:list": (ANYONE,),                 # filtered: own, and all of the projects I manage
    "volume:get": (ADMIN, OWNER, MANAGER),
    "volume:attach": (ADMIN, OWNER, MANAGER),  # and the instance must be one the actor may see
    "volume:detach": (ADMIN, OWNER, MANAGER),
    "volume:snapshot": (ADMIN, OWNER, MANAGER),
    "volume:delete": (ADMIN, OWNER, MANAGER),
    "snapshot:list": (ANYONE,),               # filtered as volumes
    "snapshot:get": (ADMIN, OWNER, MANAGER),
    "snapshot:delete": (ADMIN, OWNER, MANAGER),
    "storage_pool:list": (ADMIN,),             # the hosts' pools: capacity, allocation, volumes promised
    # catalogue (flavors and images are listed to any authenticated caller, without a rule)
    "image:register": (ADMIN,),
    # images users make (storage, image_access.py): seeing and booting one follows its visibility
    "image:get_public": (ANYONE,),
    "image:get_project": (ADMIN, MEMBER),      # a course's image: its members and teachers
    "image:get_private": (ADMIN, OWNER),
    "image:create_public": (ADMIN,),
    "image:create_project": (ADMIN, MANAGER),  # a teacher shares an image with the course
    "image:create_private": (ANYONE,),
    "image:upload": (ADMIN, OWNER),            # the file of an image one created
    "image:delete": (ADMIN, OWNER, MANAGER),   # refused while disks stand on it
    "instance:save_image": (ADMIN, OWNER, MANAGER),  # a stopped instance's disk as a new image
    # operations
    "host:list": (ADMIN,),
    "host:get": (ADMIN,),
    "host:update": (ADMIN,),                  # disable, enable, drain
    # floating IPs (network): pools are the admins', addresses a course's
    "floating_pool:list": (ANYONE,),          # users choose a pool by name
    "floating_pool:create": (ADMIN,),
    "floating_pool:delete": (ADMIN,),
    "floating_ip:create": (ADMIN, MEMBER),
    "floating_ip:list": (ANYONE,),            # filtered: all for admins, else my courses'
    "floating_ip:get": (ADMIN, OWNER, MANAGER),
    "floating_ip:associate": (ADMIN, OWNER, MANAGER),   # and disassociate; the instance must be theirs too
    "floating_ip:delete": (ADMIN, OWNER, MANAGER),
    # security groups (network): a course's firewall is its teachers' (students pick groups)
    "security_group:list": (ADMIN, MEMBER),
    "security_group:get": (ADMIN, MEMBER),
    "security_group:create": (ADMIN, MANAGER),
    "security_group:update": (ADMIN, MANAGER),    # add and remove rules
    "security_group:delete": (ADMIN, MANAGER),
    "security_group:bind": (ADMIN, OWNER, MANAGER),     # which groups an instance is in
    "subnet:list": (ADMIN,),                  # subnets belong to the admins
    "subnet:get": (ADMIN,),
    "subnet:create": (ADMIN,),
    "subnet:update": (ADMIN,),                # reserve and release addresses
    "subnet:delete": (ADMIN,),
    "subnet_block:create": (ADMIN, MANAGER),   # a course's own addresses (g5k-subnets)
    "subnet_block:list": (ADMIN, MANAGER, MEMBER),
    "subnet_block:end": (ADMIN, MANAGER),
    "reconcile:run": (ADMIN,),
    "reconcile:list": (ADMIN,),
    # notification preferences (metrics): each user their own, nobody else's
    "notification:get": (OWNER,),
    "notification:set": (OWNER,),
    # alarms (metrics): on an instance its owner and its course's managers (target: the instance,
    # then the alarm with the instance's user_id and project_id); on a host admins only
    "alarm:create": (ADMIN, OWNER, MANAGER),
    "alarm:create_host": (ADMIN,),
    "alarm:list": (ANYONE,),                  # filtered: own, the courses I manage; admins all
    "alarm:get": (ADMIN, OWNER, MANAGER),
    "alarm:delete": (ADMIN, OWNER, MANAGER),
    # scheduled instance actions (metrics): the alarms' rules (services/metrics/ownership.py)
    "schedule:create": (ADMIN, OWNER, MANAGER),
    "schedule:list": (ANYONE,),               # filtered: own, the courses I manage; admins all
    "schedule:get": (ADMIN, OWNER, MANAGER),
    "schedule:delete": (ADMIN, OWNER, MANAGER),
}


def creation_project(actor, action, requested=None):
    """The project something new of `actor` goes to (an instance, a volume): the one named (the
    policy must let the actor do `action` in it: a member or manager; admins may name any), or else
    the actor's only project. Forbidden or InvalidInput naming `project` otherwise."""
    if requested is not None:
        if not allowed(actor, action, {"project_id": requested}):
            raise Forbidden(f"you are not a member of project {requested}",
                            {"project": ["you are not a member of this project"]})
        return requested
    projects = project_ids(actor)
    if not projects:
        raise Forbidden("you are not a member of any project; ask a teacher or an administrator",
                        {"project": ["you are not a member of any project"]})
    if len(projects) > 1:
        ids = ", ".join(str(p) for p in sorted(projects))
        raise InvalidInput(f"you are in several projects ({ids}): name one",
                           {"project": [f"name one of your projects: {ids}"]})
    return projects[0]


def project_role(actor, project_id):
    """'manager', 'member' or None: the actor's role in the project."""
    for entry in actor.get("projects") or ():
        if entry["id"] == project_id:
            return entry["role"]
    return None


def hidden_outside(actor, project_id):
    """`enforce`'s `hidden` for an action on a project's things: someone outside the project
    learns nothing of it (NotFound, as accounts' get_project says)."""
    return None if project_role(actor, project_id) else f"no project {project_id}"


def project_ids(actor, roles=("manager", "member")):
    """The ids of the actor's projects in which it holds one of `roles`."""
    return [entry["id"] for entry in actor.get("projects") or () if entry["role"] in roles]


def managed_project_ids(actor):
    return project_ids(actor, ("manager",))


def is_admin(actor):
    return actor.get("role") == "admin"


def _holds(actor, principal, target):
    if principal == ANYONE:
        return True
    if principal == ADMIN:
        return is_admin(actor)
    user_id, project_id = target.get("user_id"), target.get("project_id")
    if principal == OWNER:
        return user_id is not None and user_id == actor["id"]
    role = project_role(actor, project_id) if project_id is not None else None
    if principal == MANAGER:
        return role == "manager"
    if principal == MEMBER:
        return role in ("manager", "member")
    return False


def allowed(actor, action, target=None):
    """True if the policy lets `actor` do `action` on `target`. Unknown actions: False."""
    rule = POLICY.get(action)
    if rule is None:
        return False
    return any(_holds(actor, principal, target or {}) for principal in rule)


def enforce(actor, action, target=None, *, hidden=None, what=None):
    """Raise unless allowed. `hidden`: a message for NotFound instead of Forbidden, for a target
    the actor must not even learn exists (someone else's instance looks missing). `what` words
    the refusal ("only an administrator may <what>")."""
    if allowed(actor, action, target):
        return
    if hidden is not None:
        raise NotFound(hidden)
    raise Forbidden(_refusal(action, what))


def _refusal(action, what):
    what = what or action.replace(":", " ")
    rule = POLICY.get(action)
    if rule is None:
        return f"nobody may {what}"
    who = {ADMIN: "an administrator", OWNER: "its owner", MANAGER: "a manager of the project",
           MEMBER: "a member of the project", ANYONE: "anyone"}
    return f"only {' or '.join(who[p] for p in rule)} may {what}"
