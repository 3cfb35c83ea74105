"""The image store: image files the storage service keeps under its data dir, uploaded through the
API or saved from an instance's root disk. Hosts copy them from there (ensure_image), by id.

An upload is three steps, each idempotent under at-least-once delivery:
  create_image        a row in state `queued`, no file; its version is the next of its name in
                      its scope (image_access.scope_of)
  start_upload        `uploading`; the part file is made empty (a new attempt starts over)
  write_chunk         writes the bytes at their offset in `<id>.<format>.part`: a redelivered chunk
                      writes the same bytes at the same place; past IMAGE_MAX_BYTES it is refused
  finish_upload       qemu-img info (format, virtual size, no backing file) and sha256 off the
                      hub; the part file becomes `<id>.<format>` and the image `active`, or the
                      file goes and the image is `error` with the reason
An upload left `queued`/`uploading` longer than IMAGE_UPLOAD_TIMEOUT (and a `saving` one) is swept
by a timer: its file goes and the image is `error`, so a client that vanished leaves nothing behind.
"""
import datetime
import hashlib
import math
import os

from eventlet import tpool
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from common.clock import utcnow
from common.errors import Conflict, InvalidInput, TooLarge
from services.storage import image_access
from services.storage.disks import GIB, resolve
from services.storage.models import Image, Volume

STORE_DIR = os.path.join("images", "store")  # relative to the data dir, like registered images
DEFAULT_MAX_BYTES = 20 * GIB
DEFAULT_UPLOAD_TIMEOUT_S = 3600
HASH_BLOCK = 1 << 20
TOUCH_EVERY_S = 10  # an upload in progress is seen alive at this resolution (far below the sweep's timeout)


def store_path(image_id, fmt):
    """The image's file in the store, relative to the data dir (what source_path holds)."""
    return os.path.join(STORE_DIR, f"{image_id}.{fmt}")


# What an upload may carry: the disk, and for direct kernel boot (Eucalyptus's eki/eri) a kernel
# and a ramdisk, each its own file in the store next to the disk.
PARTS = ("file", "kernel", "ramdisk")
BOOT_FILE_SUFFIX = {"kernel": "kernel", "ramdisk": "initrd"}
BOOT_FILE_COLUMN = {"kernel": "kernel_path", "ramdisk": "initrd_path"}
# What a kernel for direct boot starts with (an ELF vmlinux, PVH) or holds at 0x202 (a bzImage),
# and what a ramdisk starts with (a cpio archive, or one compressed by gzip, xz, zstd, lz4, bzip2).
RAMDISK_MAGICS = (b"070701", b"070702", b"070707", b"\x1f\x8b", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd", b"\x02\x21\x4c\x18",
                  b"BZh")


def final_path(image, part, data_dir):
    if part == "file":
        return resolve(image.source_path, data_dir)
    return resolve(os.path.join(STORE_DIR, f"{image.id}.{BOOT_FILE_SUFFIX[part]}"), data_dir)


def part_path(image, data_dir, part="file"):
    return final_path(image, part, data_dir) + ".part"


def _next_version(session, name, scope):
    latest = session.scalar(select(func.max(Image.version)).where(Image.name == name, Image.scope == scope))
    return (latest or 0) + 1


def record_image(session, actor, fields, visibility, project_id, state):
    """A new image row (no file yet) as the next version of its name in its scope. Two creates of
    one name racing: the unique (name, scope, version) lets one win; the other takes the next."""
    image_access.check_may_create(actor, visibility, project_id)
    scope = image_access.scope_of(visibility, actor["id"], project_id)
    for _attempt in range(5):
        image = Image(**fields, visibility=visibility, scope=scope, user_id=actor["id"], project_id=project_id,
                      state=state, version=_next_version(session, fields["name"], scope), source_path="")
        session.add(image)
        try:
            session.flush()
            image.source_path = store_path(image.id, image.format)
            session.commit()
            return image
        except IntegrityError:
            session.rollback()
    raise Conflict(f"too many concurrent uploads of {fields['name']}", {"name": ["try again"]})


def create_image(session, actor, request):
    fields = {key: request[key] for key in ("name", "description", "format", "min_memory_mib", "cmdline")}
    image = record_image(session, actor, {**fields, "size_bytes": 0, "min_disk_gib": request["min_disk_gib"] or 1},
                         request["visibility"], request["project"], "queued")
    return image


def _uploadable(session, actor, image_id):
    image = image_access.visible_image(session, actor, image_id, "image:upload")
    if image.state not in ("queued", "uploading"):
        raise Conflict(f"image {image_id} is {image.state}: its file was uploaded already",
                       {"image": [f"the image is {image.state}"]})
    return image


def _check_size(nbytes, max_bytes):
    if nbytes > max_bytes:
        raise TooLarge(f"the file is larger than this cloud's limit of {max_bytes} bytes (IMAGE_MAX_BYTES)",
                       {"file": [f"at most {max_bytes} bytes"]})


def start_upload(session, actor, image_id, length, data_dir, max_bytes, part="file"):
    """The part file of `part` made empty (the disk's: the image `uploading`). `length`: the body's
    declared size when known (refused at once past the limit). Kernel and ramdisk come before the
    disk: the disk's finish makes the image active."""
    image = _uploadable(session, actor, image_id)
    if length is not None:
        _check_size(length, max_bytes)
    path = part_path(image, data_dir, part)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb"):
        pass
    if part == "file":
        image.state = "uploading"
    image.updated_at = utcnow()
    session.commit()
    return image


def write_chunk(session, actor, image_id, offset, data, data_dir, max_bytes, part="file"):
    """Write `data` at `offset` of the part file. Idempotent: the same chunk again writes the same
    bytes at the same place."""
    image = _uploadable(session, actor, image_id)
    path = part_path(image, data_dir, part)
    if not os.path.exists(path):
        raise Conflict(f"image {image_id}: start the upload first", {"image": ["no upload under way"]})
    _check_size(offset + len(data), max_bytes)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)
    now = utcnow()
    if image.updated_at is None or (now - image.updated_at).total_seconds() >= TOUCH_EVERY_S:
        image.updated_at = now  # the sweep measures idleness, not age (a commit per chunk would cost more)
    session.commit()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def inspect_file(path, fmt, inspect, field="file"):
    """(virtual size, sha256, length) of a file that must be a standalone `fmt` image; InvalidInput
    naming `field` otherwise. qemu-img runs as a green subprocess; the hash in a native thread."""
    info = inspect(path)
    if info is None or info.get("format") != fmt:
        found = "not a disk image" if info is None else f"a {info.get('format')} image"
        raise InvalidInput(f"{field} is {found}, not {fmt}", {field: [f"expected a {fmt} image"]})
    if info.get("backing-filename"):
        # Hosts copy only this file, and a backing file named inside an image could be any file
        # of the host: an image must stand alone.
        raise InvalidInput(f"{field} has a backing file ({info['backing-filename']}); make it self-contained "
                           "first (qemu-img convert -O qcow2 SRC DEST)", {field: ["has a backing file"]})
    return int(info["virtual-size"]), tpool.execute(_sha256, path), os.path.getsize(path)


def finish_upload(session, actor, image_id, length, data_dir, inspect, part="file"):
    """Check the uploaded file and make the image bootable; a file that is not a good image goes,
    the image is `error` (and InvalidInput says why). A repeat on an active image returns it.
    A kernel or ramdisk is checked by its first bytes and kept beside the disk to come."""
    image = image_access.visible_image(session, actor, image_id, "image:upload")
    if image.state == "active" and part == "file":
        return image
    image = _uploadable(session, actor, image_id)
    path = part_path(image, data_dir, part)
    if not os.path.exists(path):
        raise Conflict(f"image {image_id}: no upload under way", {"image": ["no upload under way"]})
    os.truncate(path, length)  # a retried upload may have left a longer tail
    if part != "file":
        return keep_boot_file(session, image, part, path, data_dir)
    if image.initrd_path and not image.kernel_path:
        remove_quietly(path)
        fail(session, image, "a ramdisk without a kernel")
        raise InvalidInput("a ramdisk boots only with a kernel: upload the kernel first",
                           {"kernel": ["required with a ramdisk"]})
    return activate(session, image, path, data_dir, inspect, "file")


def _looks_like(part, path):
    with open(path, "rb") as source:
        head = source.read(0x206)
    if part == "kernel":
        return head.startswith(b"\x7fELF") or head[0x202:0x206] == b"HdrS"
    return head.startswith(RAMDISK_MAGICS)


def keep_boot_file(session, image, part, path, data_dir):
    """A kernel (an ELF vmlinux or a bzImage) or ramdisk (cpio, compressed or not) moved into place
    and recorded; anything else removed, InvalidInput naming it (the image stays uploadable)."""
    if not _looks_like(part, path):
        remove_quietly(path)
        what = "an ELF vmlinux or a bzImage" if part == "kernel" else "a cpio archive (gzip, xz, zstd, lz4, bzip2 or none)"
        raise InvalidInput(f"{part} is not {what}", {part: [f"expected {what}"]})
    os.replace(path, final_path(image, part, data_dir))
    setattr(image, BOOT_FILE_COLUMN[part], os.path.join(STORE_DIR, f"{image.id}.{BOOT_FILE_SUFFIX[part]}"))
    image.updated_at = utcnow()
    session.commit()
    return image


def activate(session, image, part, data_dir, inspect, field):
    """The part file checked and moved into place: the image active; else removed, image `error`."""
    try:
        size_bytes, checksum, file_bytes = inspect_file(part, image.format, inspect, field)
    except InvalidInput as refused:
        remove_quietly(part)
        fail(session, image, refused.message)
        raise
    os.replace(part, resolve(image.source_path, data_dir))
    image.size_bytes, image.checksum, image.file_bytes = size_bytes, checksum, file_bytes
    image.min_disk_gib = max(image.min_disk_gib or 1, math.ceil(size_bytes / GIB))
    image.state, image.reason = "active", None
    session.commit()
    return image


def fail(session, image, reason):
    image.state, image.reason = "error", reason[:255]
    session.commit()


def remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def sweep_abandoned(session, data_dir, now, timeout_s):
    """Uploads and saves idle longer than `timeout_s`: their part files go, the images are `error`.
    Returns the ids swept."""
    cutoff = now - datetime.timedelta(seconds=timeout_s)
    stale = session.scalars(select(Image).where(
        Image.state.in_(("queued", "uploading", "saving")), Image.updated_at < cutoff)).all()
    for image in stale:
        for part in PARTS:
            remove_quietly(part_path(image, data_dir, part))
        fail(session, image, f"abandoned: nothing happened for {timeout_s} s")
    return [image.id for image in stale]



def image_users(session, image_id):
    """What stands on the image: root disks and data volumes made over it (this service's own
    volumes table), as words for the refusal."""
    rows = session.scalars(select(Volume).where(Volume.image_id == image_id).order_by(Volume.id)).all()
    return [f"the root disk of instance {v.instance_id}" if v.kind == "root"
            else f"data volume {v.display_name or v.name} ({v.id})" for v in rows]


def delete_image(session, actor, image_id, data_dir):
    """Mark the image deleted (its row stays: ids are never reused, hosts cache files by id) and
    remove its file in the store; Conflict naming what uses it while anything does. The state
    changes first, so a root disk asked for meanwhile finds the image gone (find_image) instead of
    standing on a file about to go; if something stood on it already, the state goes back."""
    image = image_access.visible_image(session, actor, image_id, "image:delete")
    previous = image.state
    image.state = "deleted"
    session.commit()
    users = image_users(session, image.id)
    if users:
        image.state = previous
        session.commit()
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise Conflict(f"image {image_id} is in use by {shown}: delete those first", {"image": users[:20]})
    if image.source_path.startswith(STORE_DIR):
        # Only the store's files are ours to remove: an image registered by path names a file an
        # administrator put there (a built course image, which may be registered again).
        for part in PARTS:
            remove_quietly(final_path(image, part, data_dir))
            remove_quietly(part_path(image, data_dir, part))
    return image


def deleted_image(session, image_id):
    """The image row if it is `deleted` (the image_deleted event's handler), else None."""
    image = session.get(Image, int(image_id))
    return image if image is not None and image.state == "deleted" else None


def host_copy_name(image):
    """The name of a host's cached copy (hostagent/storage_pool.py image_volume_name)."""
    return f"image-{image.id}.{image.format}"


def forget_host_copies(hosts, listed_hosts, image, facts, log):
    """Ask every host that is up to delete its copy of the image (a host without one answers
    deleted=False; asked again, the same: idempotent). A host that is down keeps its copy until
    reconcile finds it (a deleted image's copy is an orphan). Returns the hosts that deleted one."""
    deleted = []
    for host in listed_hosts:
        name = host["name"]
        facts.forget_image(name, image.id)
        if not host.get("up"):
            log.warning("image %s deleted while host %s is down: reconcile removes its copy %s later", image.id,
                        name, host_copy_name(image))
            continue
        try:
            if hosts(name).delete_volume({"name": host_copy_name(image)})["deleted"]:
                deleted.append(name)
        except Exception as exc:  # one host's failure must not keep the others' copies
            log.warning("image %s: host %s could not delete its copy: %s", image.id, name, exc)
    return deleted
