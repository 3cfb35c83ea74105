"""Images in the portal: the images I may see (public, my courses', my own; uploads under way and
failed ones with their reason), uploading one (a multipart form: werkzeug spools the files to disk,
and they go to the storage service in chunks as the API's PUT does), deleting one, and saving a
stopped instance as an image (its page's panel)."""
from flask import redirect, request

from common.errors import InvalidInput
from gateway.api.images import relay_upload
from gateway.http_input import BinaryBody
from gateway.portal.forms import attempt, body_from_form, form_page
from gateway.portal.gather import gather
from gateway.portal.registry import page
from gateway.portal.views.instances import _instance_page

INSTANCES = "services.instances.schemas:"
STORAGE = "services.storage.schemas:"


def _images_page(rpc, actor, errors=None, form=None):
    images, projects = gather((rpc.storage.list_images, actor), (rpc.accounts.list_projects, actor))
    return form_page("images/index.html", errors, title="Images", images=images, form=form or {},
                     courses=[(str(p["id"]), p["name"]) for p in projects])


def _upload(rpc, actor):
    """The form's image made, then its files sent (kernel and ramdisk before the disk)."""
    disk = request.files.get("file")
    if disk is None or not disk.filename:
        raise InvalidInput("choose the disk image file", {"file": ["choose a file"]})
    image = rpc.storage.create_image(actor, body_from_form(STORAGE + "NewImageRequest"))
    for part in ("kernel", "ramdisk", "file"):
        sent = request.files.get(part)
        if sent is not None and sent.filename:
            image = relay_upload(rpc, actor, image["id"], BinaryBody(sent.stream, None), part)
    return image


@page("/images", title="Images", area="student", nav="Image library")
def images(rpc, actor):
    return _images_page(rpc, actor)


@page("/images/upload", title="Upload an image", area="student", methods=("POST",), large_body=True)
def upload_image(rpc, actor):
    _image, errors = attempt(lambda: _upload(rpc, actor))
    if errors:
        return _images_page(rpc, actor, errors, request.form)
    return redirect("/images", code=303)


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
