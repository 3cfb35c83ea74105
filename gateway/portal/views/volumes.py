"""The instance page's Volumes panel: create a volume (on the instance's host, attached at once),
attach one of the course's volumes, detach, delete. Each form goes back to the instance page, or
shows it again with the service's refusal next to the panel's fields."""
from flask import redirect, request

from common.errors import InvalidInput
from gateway.portal.forms import attempt, body_from_form
from gateway.portal.registry import page
from gateway.portal.views.instances import _instance_page

STORAGE = "services.storage.schemas:"


def _back(rpc, actor, instance_id, call):
    _done, errors = attempt(call)
    if errors:
        return _instance_page(rpc, actor, instance_id, errors, request.form, "volumes")
    return redirect(f"/instances/{instance_id}", code=303)


@page("/instances/<uuid:instance_id>/volumes", title="Create a volume", area="student", methods=("POST",))
def create_volume(rpc, actor, instance_id):
    """A new empty volume in the instance's course, on its host, attached at once."""
    def create_and_attach():
        instance = rpc.instances.get_instance(actor, instance_id)
        body = body_from_form(STORAGE + "CreateVolumeRequest")
        made = rpc.storage.create_volume(actor, {**body, "instance": instance["id"], "project": instance["project"]})
        # Made, it stays even when the attach is refused: the panel lists it to attach or delete.
        return rpc.storage.attach_volume(actor, made["id"], {"instance": instance["id"]})
    return _back(rpc, actor, instance_id, create_and_attach)


@page("/instances/<uuid:instance_id>/volumes/attach", title="Attach a volume", area="student", methods=("POST",))
def attach_volume(rpc, actor, instance_id):
    """One of the course's volumes (the form's `volume`, its id) on this instance."""
    volume = request.form.get("volume", "").strip()

    def attach():
        if not volume.isdigit():
            raise InvalidInput("choose a volume", {"volume": ["choose a volume"]})
        return rpc.storage.attach_volume(actor, int(volume), {"instance": str(instance_id)})
    return _back(rpc, actor, instance_id, attach)


@page("/instances/<uuid:instance_id>/volumes/<id:volume_id>/detach", title="Detach a volume", area="student",
      methods=("POST",))
def detach_volume(rpc, actor, instance_id, volume_id):
    return _back(rpc, actor, instance_id, lambda: rpc.storage.detach_volume(actor, volume_id))


@page("/instances/<uuid:instance_id>/volumes/<id:volume_id>/delete", title="Delete a volume", area="student",
      methods=("POST",))
def delete_volume(rpc, actor, instance_id, volume_id):
    return _back(rpc, actor, instance_id, lambda: rpc.storage.delete_volume(actor, volume_id))
