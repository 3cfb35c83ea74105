"""Data volumes and their snapshots (the storage service): create, attach to an instance on the
volume's host (hot-plugged when it runs), detach, snapshot, delete."""
from gateway.api.registry import STORAGE, route
from gateway.routes import QueryParam

VOLUME = STORAGE + "DataVolumeSchema"
SNAPSHOT = STORAGE + "SnapshotSchema"
PROJECT = QueryParam("project", "integer", None, "only this project's", minimum=1)


@route("POST", "/api/v1/volumes", tag="volumes",
       summary="Create a data volume in a project: empty (size_gib), a copy of a snapshot, or over an image; on "
               "the snapshot's host, the named instance's host, or the host with most room; quota-checked "
               "(volumes, volume_gib); the same request again returns the volume",
       body=STORAGE + "CreateVolumeRequest", response=VOLUME, status=201, errors=(409, 502))
def create_volume(rpc, actor, body):
    return rpc.storage.create_volume(actor, body)


@route("GET", "/api/v1/volumes", tag="volumes",
       summary="List data volumes: mine and those of the projects I manage (all for an admin)",
       response=VOLUME, many=True,
       query=(PROJECT, QueryParam("instance", "string", None, "only those attached to this instance (its id)",
                                  format="uuid", max_length=36)))
def list_volumes(rpc, actor, project, instance):
    return rpc.storage.list_data_volumes(actor, {"project": project, "instance": instance})


@route("GET", "/api/v1/volumes/<id:volume_id>", tag="volumes", summary="Get a data volume", response=VOLUME)
def get_volume(rpc, actor, volume_id):
    return rpc.storage.get_volume(actor, volume_id)


@route("DELETE", "/api/v1/volumes/<id:volume_id>", tag="volumes",
       summary="Delete a data volume and its disk (refused while attached: 409 naming state); its snapshots stay",
       response=VOLUME, errors=(409, 502))
def delete_volume(rpc, actor, volume_id):
    return rpc.storage.delete_volume(actor, volume_id)


@route("POST", "/api/v1/volumes/<id:volume_id>/attach", tag="volumes",
       summary="Attach to a running (hot-plug) or stopped instance of the volume's project on the volume's host "
               "(another host: 409 naming instance); it gets the next free device (vdb, vdc, ...)",
       body=STORAGE + "AttachVolumeRequest", response=VOLUME, errors=(409, 502))
def attach_volume(rpc, actor, volume_id, body):
    return rpc.storage.attach_volume(actor, volume_id, body)


@route("POST", "/api/v1/volumes/<id:volume_id>/detach", tag="volumes",
       summary="Detach from its instance (a running guest lets the disk go first); the data stays on the volume",
       response=VOLUME, errors=(409, 502))
def detach_volume(rpc, actor, volume_id):
    return rpc.storage.detach_volume(actor, volume_id)


@route("POST", "/api/v1/volumes/<id:volume_id>/snapshots", tag="volumes",
       summary="Snapshot a volume: a full copy on its host (crash-consistent while attached)",
       body=STORAGE + "CreateSnapshotRequest", response=SNAPSHOT, status=201, errors=(409, 502))
def create_snapshot(rpc, actor, volume_id, body):
    return rpc.storage.create_snapshot(actor, volume_id, body)


@route("GET", "/api/v1/volumes/<id:volume_id>/snapshots", tag="volumes", summary="A volume's snapshots",
       response=SNAPSHOT, many=True)
def list_volume_snapshots(rpc, actor, volume_id):
    return rpc.storage.list_snapshots(actor, {"volume": volume_id})  # 404 for a volume one may not see


@route("GET", "/api/v1/snapshots", tag="volumes",
       summary="List volume snapshots: mine and those of the projects I manage (all for an admin)",
       response=SNAPSHOT, many=True, query=(PROJECT,))
def list_snapshots(rpc, actor, project):
    return rpc.storage.list_snapshots(actor, {"project": project})


@route("GET", "/api/v1/snapshots/<id:snapshot_id>", tag="volumes", summary="Get a volume snapshot",
       response=SNAPSHOT)
def get_snapshot(rpc, actor, snapshot_id):
    return rpc.storage.get_snapshot(actor, snapshot_id)


@route("DELETE", "/api/v1/snapshots/<id:snapshot_id>", tag="volumes", summary="Delete a volume snapshot",
       response=SNAPSHOT, errors=(409, 502))
def delete_snapshot(rpc, actor, snapshot_id):
    return rpc.storage.delete_snapshot(actor, snapshot_id)


@route("GET", "/api/v1/storage-pools", tag="volumes",
       summary="Each up host's storage pool: its kind (dir: qcow2 files, logical: LVM), capacity, allocation and "
               "free bytes (libvirt's), and the bytes and "
               "number of the data volumes there (admin); a volume that would not fit is refused (409 naming size_gib)",
       response=STORAGE + "StoragePoolSchema", many=True)
def list_storage_pools(rpc, actor):
    return rpc.storage.list_pools(actor)
