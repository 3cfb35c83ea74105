"""Images beyond the catalogue list (the storage service): one image, its file upload, its delete.

The upload is relayed, never held: the body is read in chunks of UPLOAD_CHUNK_BYTES, each goes to
the storage service (upload_image_chunk, base64 in JSON), at most CHUNKS_IN_FLIGHT unanswered; the
service decides everything (who may, the size limit, whether the bytes are a good image)."""
import base64
import collections

from gateway.api.registry import INSTANCES, STORAGE, route

UPLOAD_CHUNK_BYTES = 4 << 20
# Chunks sent before the oldest one's answer is awaited: the service writes one while the next is
# read and encoded (offsets make their order irrelevant); at most this many MiB are held.
CHUNKS_IN_FLIGHT = 2


@route("GET", "/api/v1/images/<id:image_id>", tag="catalogue", summary="Get an image I may see",
       response=STORAGE + "ImageSchema")
def get_image(rpc, actor, image_id):
    return rpc.storage.show_image(actor, image_id)


@route("PUT", "/api/v1/images/<id:image_id>/file", tag="catalogue",
       summary="Upload a queued image's file (its creator or an admin), streamed; checked with qemu-img "
               "(the declared format, no backing file; else 400 and the file goes), then the image is active",
       body="the disk image's bytes (qcow2 or raw, as declared)", body_type="binary",
       response=STORAGE + "ImageSchema", errors=(409, 413))
def upload_image_file(rpc, actor, image_id, body):
    return relay_upload(rpc, actor, image_id, body, "file")


@route("PUT", "/api/v1/images/<id:image_id>/kernel", tag="catalogue",
       summary="Upload the kernel of a queued image for direct kernel boot (an ELF vmlinux or a bzImage), "
               "before its disk; the image's cmdline is given at its creation",
       body="the kernel's bytes", body_type="binary", response=STORAGE + "ImageSchema", errors=(409, 413))
def upload_image_kernel(rpc, actor, image_id, body):
    return relay_upload(rpc, actor, image_id, body, "kernel")


@route("PUT", "/api/v1/images/<id:image_id>/ramdisk", tag="catalogue",
       summary="Upload the ramdisk (initramfs: a cpio archive, compressed or not) of a queued image, with "
               "its kernel, before its disk",
       body="the ramdisk's bytes", body_type="binary", response=STORAGE + "ImageSchema", errors=(409, 413))
def upload_image_ramdisk(rpc, actor, image_id, body):
    return relay_upload(rpc, actor, image_id, body, "ramdisk")


def relay_upload(rpc, actor, image_id, body, part):
    """`body` (read_chunk(size), length) to the storage service as the image's `part`: the REST
    routes' request stream, or a portal form's file (spooled to disk by werkzeug)."""
    rpc.storage.start_image_upload(actor, image_id, body.length, part)
    offset, in_flight = 0, collections.deque()
    try:
        while True:
            chunk = body.read_chunk(UPLOAD_CHUNK_BYTES)
            if not chunk:
                break
            in_flight.append(rpc.storage.upload_image_chunk.call_async(
                actor, image_id, offset, base64.b64encode(chunk).decode("ascii"), part))
            offset += len(chunk)
            if len(in_flight) >= CHUNKS_IN_FLIGHT:
                in_flight.popleft().result()  # a refusal (413) stops the relay here
        while in_flight:
            in_flight.popleft().result()
    finally:
        _drain(in_flight)
    return rpc.storage.finish_image_upload(actor, image_id, offset, part)


def _drain(in_flight):
    """After a refused chunk, the replies still due are awaited (and their errors dropped), so the
    pooled proxy carries none of them into its next request."""
    while in_flight:
        try:
            in_flight.popleft().result()
        except Exception:  # noqa: BLE001  (the first refusal is what the client gets)
            pass


@route("DELETE", "/api/v1/images/<id:image_id>", tag="catalogue",
       summary="Delete an image (its owner, a manager of its course, an admin): refused while disks stand "
               "on it; its file and every host's copy go",
       response=STORAGE + "ImageSchema", errors=(409,))
def delete_image(rpc, actor, image_id):
    return rpc.storage.delete_image(actor, image_id)


@route("POST", "/api/v1/instances/<uuid:instance_id>/save-image", tag="instances",
       summary="Save a stopped instance's disk as a new image (its owner, its course's managers, an admin); "
               "accepted: the image is saving, then active (or error with the reason)",
       body=INSTANCES + "SaveImageRequest", response=STORAGE + "ImageSchema", status=202, errors=(409,))
def save_instance_image(rpc, actor, instance_id, body):
    return rpc.instances.save_instance_image(actor, instance_id, body)
