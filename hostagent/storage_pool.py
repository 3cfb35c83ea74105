"""Libvirt storage pool and volume operations, and the `dir` pool's own (qcow2 volumes in a
directory). hostagent/pools/ puts each pool kind behind one interface; the kind-independent calls
(find, delete, list, usage) are here. Every function is idempotent by name (RPC is delivered at
least once) and is run in a native thread by HypervisorConnection.run: libvirt and plain Python
only."""
import os
import xml.etree.ElementTree as ET

import libvirt

from common.errors import HostOperationFailed, NotFound

UPLOAD_CHUNK_BYTES = 1 << 20


def image_volume_name(image_id, fmt="qcow2"):
    return f"image-{image_id}.{fmt}"


def dir_pool_xml(name, path):
    """A dir pool's definition: its volumes are files in `path` (made absolute)."""
    path = os.path.abspath(path)
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    ET.SubElement(ET.SubElement(pool, "target"), "path").text = path
    return ET.tostring(pool, encoding="unicode")


def ensure_pool(conn, name, path):
    """The dir pool `name`, defined (target `path`), built, active and autostarted."""
    return define_and_start(conn, name, dir_pool_xml(name, path), build=True)


def define_and_start(conn, name, xml, build):
    """The pool `name` (defined from `xml` when missing, then built if `build`), active and
    autostarted. An existing definition is kept as it is."""
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        pool = conn.storagePoolDefineXML(xml, 0)
        if build:
            pool.build(0)  # a dir pool: creates the target directory
    if not pool.isActive():
        pool.create(0)
    if not pool.autostart():
        pool.setAutostart(1)
    return pool


def capacity_gib(conn, name):
    """The pool's size in GiB (its file system's, for a dir pool), or None while it does not exist
    yet (the agent's first storage operation defines it). Read without the pool lock: a heartbeat
    must not wait for an image upload."""
    try:
        pool = conn.storagePoolLookupByName(name)
        if not pool.isActive():
            return None
        return pool.info()[1] // (1 << 30)
    except libvirt.libvirtError:
        return None


def pool_path(pool):
    return ET.fromstring(pool.XMLDesc(0)).findtext("target/path")


def volume_info(volume):
    target = ET.fromstring(volume.XMLDesc(0)).find("target")
    fmt = target.find("format") if target is not None else None
    return {"name": volume.name(), "path": volume.path(), "capacity_bytes": volume.info()[1],
            "format": fmt.get("type") if fmt is not None else "raw"}


def find_volume(pool, name):
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


def _backing_format(conn, backing_path):
    try:
        backing = conn.storageVolLookupByPath(backing_path)
    except libvirt.libvirtError:
        return "qcow2"  # not a libvirt volume: labcloud images are qcow2
    return volume_info(backing)["format"]


def volume_xml(name, capacity_bytes, fmt, backing_path=None, backing_format=None):
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="bytes").text = str(capacity_bytes)
    ET.SubElement(ET.SubElement(volume, "target"), "format", type=fmt)
    if backing_path:
        backing = ET.SubElement(volume, "backingStore")
        ET.SubElement(backing, "path").text = backing_path
        ET.SubElement(backing, "format", type=backing_format)
    return ET.tostring(volume, encoding="unicode")


def create_volume(conn, pool, name, capacity_bytes, fmt="qcow2", backing_path=None, backing_format=None):
    """A volume (copy-on-write over `backing_path` if given); an existing one is returned as is."""
    volume = find_volume(pool, name)
    if volume is None:
        if backing_path and backing_format is None:
            backing_format = _backing_format(conn, backing_path)
        try:
            volume = pool.createXML(volume_xml(name, capacity_bytes, fmt, backing_path, backing_format), 0)
        except libvirt.libvirtError as exc:
            # A concurrent redelivery created it first.
            volume = find_volume(pool, name)
            if exc.get_error_code() != libvirt.VIR_ERR_STORAGE_VOL_EXIST or volume is None:
                raise
    return volume_info(volume)


def grow_volume(conn, pool, name, capacity_bytes, can_resize=True):
    """Grow the volume to `capacity_bytes` (never shrinks: a smaller size changes nothing). The test
    driver cannot resize; its volumes hold no data, so there the volume is made again, larger, over
    the same backing file."""
    volume = find_volume(pool, name)
    if volume is None:
        raise NotFound(f"no volume {name} on this host")
    if volume.info()[1] >= capacity_bytes:
        return volume_info(volume)
    if can_resize:
        volume.resize(capacity_bytes, 0)
        return volume_info(volume)
    target = ET.fromstring(volume.XMLDesc(0))
    backing = target.findtext("backingStore/path")
    fmt = (target.find("target/format") is not None and target.find("target/format").get("type")) or "qcow2"
    volume.delete(0)
    return create_volume(conn, pool, name, capacity_bytes, fmt, backing, "qcow2" if backing else None)


def delete_volume(pool, name):
    volume = find_volume(pool, name)
    if volume is None:
        return False
    volume.delete(0)
    return True


def ensure_image(conn, pool, image_id, capacity_bytes, fmt="qcow2", source_path=None, upload=True):
    """The image volume `image-<id>.<fmt>`, its content streamed from `source_path` when `upload`.

    Callers serialise calls on one pool (the agent's pool lock): a second call must never find
    the volume while the first is still uploading into it.
    The test driver keeps volumes in memory and cannot take uploads, so there `upload` is False
    and the volume only has the right name and capacity.
    """
    name = image_volume_name(image_id, fmt)
    volume = find_volume(pool, name)
    if volume is not None:
        return volume_info(volume)
    if upload and source_path and not os.path.isfile(source_path):
        raise HostOperationFailed(f"image {image_id}: source {source_path} is not a file on this host")
    volume = pool.createXML(volume_xml(name, capacity_bytes, fmt), 0)
    if upload and source_path:
        try:
            upload_file(conn, volume, source_path)
        except Exception:
            volume.delete(0)  # never leave a half-written image that later calls would reuse
            raise
    # No pool.refresh(): info() and XMLDesc() re-read the volume's file (libvirt 9.0 reports the
    # uploaded header's capacity at once), while a refresh drops and re-scans every volume of
    # the pool, failing lookups that other calls make meanwhile.
    return volume_info(volume)


def list_volumes(pool):
    return [volume_info(volume) for volume in pool.listAllVolumes(0)]


def upload_file(conn, volume, source_path):
    stream = conn.newStream(0)
    volume.upload(stream, 0, os.path.getsize(source_path), 0)
    try:
        with open(source_path, "rb") as source:
            stream.sendAll(lambda _stream, nbytes, fh: fh.read(min(nbytes, UPLOAD_CHUNK_BYTES)), source)
        stream.finish()
    except Exception:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass
        raise


def clone_volume(conn, pool, name, source_name, capacity_bytes=None, fmt="qcow2"):
    """A full copy `name` of the volume `source_name` (its own file, flattened: no backing file;
    at least `capacity_bytes` large); an existing one of that name is returned as is. A snapshot
    of a data volume, and a volume made from a snapshot. The copy of a volume in use is
    crash-consistent (what the disk held at one moment, as after a power cut)."""
    volume = find_volume(pool, name)
    if volume is not None:
        return volume_info(volume)
    source = find_volume(pool, source_name)
    if source is None:
        raise NotFound(f"no volume {source_name} on this host")
    capacity_bytes = max(capacity_bytes or 0, source.info()[1])
    try:
        volume = pool.createXMLFrom(volume_xml(name, capacity_bytes, fmt), source, 0)
    except libvirt.libvirtError as exc:
        volume = find_volume(pool, name)  # a concurrent redelivery made it first
        if exc.get_error_code() != libvirt.VIR_ERR_STORAGE_VOL_EXIST or volume is None:
            if volume is not None:
                volume.delete(0)  # never leave a half-made copy that a retry would take as done
            raise
    return volume_info(volume)


def pool_usage(pool):
    """{pool, capacity_bytes, allocation_bytes, available_bytes} as libvirt reports them (a dir
    pool: its file system's size, used and free space, as of the pool's start or last change)."""
    _state, capacity, allocation, available = pool.info()
    return {"pool": pool.name(), "capacity_bytes": capacity, "allocation_bytes": allocation,
            "available_bytes": available}
