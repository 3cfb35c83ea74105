"""Images in the portal: the images I may see (public, my courses', my own; uploads under way and
failed ones with their reason), deleting one, and saving a stopped instance as an image (its page's
panel). Uploading a file stays with the CLI and the API (`labcloud image upload`), which stream it."""
from flask import redirect, request

from gateway.portal.forms import attempt, body_from_form, form_page
from gateway.portal.registry import page
from gateway.portal.views.instances import _instance_page

INSTANCES = "services.instances.schemas:"


def _images_page(rpc, actor, errors=None):
    return form_page("images/index.html", errors, title="Images", images=rpc.storage.list_images(actor))


@page("/images", title="Images", area="student", nav="Images")
def images(rpc, actor):
    return _images_page(rpc, actor)


@page("/images/<id:image_id>/delete", title="Delete an image", area="student", methods=("POST",))
def delete_image(rpc, actor, image_id):
    _done, errors = attempt(lambda: rpc.storage.delete_image(actor, image_id))
    if errors:
        return _images_page(rpc, actor, errors)
    return redirect("/images", code=303)


@page("/instances/<uuid:instance_id>/save-image", title="Save as image", area="student", methods=("POST",))
def save_instance_image(rpc, actor, instance_id):
    """The stopped instance's disk as a new image; the images page shows it saving, then active."""
    body = body_from_form(INSTANCES + "SaveImageRequest")
    _image, errors = attempt(lambda: rpc.instances.save_instance_image(actor, str(instance_id), body))
    if errors:
        return _instance_page(rpc, actor, instance_id, errors, request.form, "save-image")
    return redirect("/images", code=303)
