"""Who sees and makes which image: the policy actions by visibility, the scope a name is versioned
in, and resolving an image by id or by name. Rules are common/policy.py's; this module only picks
the action for an image's visibility and builds the policy target."""
from sqlalchemy import select

from common import policy
from common.errors import Forbidden, InvalidInput, NotFound
from services.storage.models import Image

# The action a visibility asks for to see (list, get, boot) and to make an image.
SEE = {"public": "image:get_public", "project": "image:get_project", "private": "image:get_private"}
MAKE = {"public": "image:create_public", "project": "image:create_project", "private": "image:create_private"}
# Listed states: what a user may boot, or is uploading, or failed (to see why); never deleted.
SHOWN_STATES = ("queued", "uploading", "saving", "active", "error")


def target(image):
    return {"user_id": image.user_id, "project_id": image.project_id}


def may_see(actor, image):
    return image.state != "deleted" and policy.allowed(actor, SEE[image.visibility], target(image))


def scope_of(visibility, user_id, project_id):
    """The namespace a name's versions count in: one per course, per owner, and the public one."""
    if visibility == "public":
        return "public"
    if visibility == "project":
        return f"project:{project_id}"
    return f"user:{user_id}"


def check_may_create(actor, visibility, project_id):
    """Public: admins; project: a manager (teacher) of that course or an admin; private: anyone."""
    if visibility == "project" and project_id is None:
        raise InvalidInput("a project image needs its project", {"project": ["required for visibility project"]})
    if visibility != "project" and project_id is not None:
        raise InvalidInput("only a project image names a project", {"project": ["only with visibility project"]})
    if policy.allowed(actor, MAKE[visibility], {"project_id": project_id, "user_id": actor["id"]}):
        return
    if visibility == "public":
        raise Forbidden("only an administrator may make a public image",
                        {"visibility": ["public needs an administrator"]})
    raise Forbidden(f"only a manager of project {project_id} may make an image for it",
                    {"project": ["you do not manage this project"]})


def visible_image(session, actor, image_id, action=None):
    """The image if the actor may see it (and, with `action`, do it), else NotFound / Forbidden."""
    image = session.get(Image, image_id)
    if image is None or not may_see(actor, image):
        raise NotFound(f"no image {image_id}", {"image": ["no such image"]})
    if action is not None:
        policy.enforce(actor, action, target(image), what=action.replace(":", " "))
    return image


def visible_images(session, actor):
    query = select(Image).where(Image.state.in_(SHOWN_STATES)).order_by(Image.name, Image.version, Image.id)
    return [image for image in session.scalars(query) if may_see(actor, image)]


def newest_by_name(session, actor, name):
    """The newest active version of `name` the actor may boot. A name in several scopes: the
    narrowest wins (one's own, then the course's, then the public one), as a user who uploads
    `debian` means theirs, not the public one."""
    query = select(Image).where(Image.name == name, Image.state == "active").order_by(Image.version.desc())
    candidates = [image for image in session.scalars(query) if may_see(actor, image)]
    for visibility in ("private", "project", "public"):
        for image in candidates:
            if image.visibility == visibility:
                return image
    raise NotFound(f"no image named {name} that you may boot", {"image": ["no such image"]})


def for_boot(session, actor, reference):
    """An image the actor may boot, by id (int) or name (str): its newest active version."""
    if isinstance(reference, str):
        return newest_by_name(session, actor, reference)
    image = session.get(Image, reference)
    if image is None or not may_see(actor, image):
        raise NotFound(f"no image {reference}", {"image": ["no such image"]})
    if image.state != "active":
        raise InvalidInput(f"image {reference} is {image.state}, not active: it cannot boot yet",
                           {"image": [f"the image is {image.state}"]})
    return image
