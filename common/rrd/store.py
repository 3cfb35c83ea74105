"""Round-robin databases (rrdtool) of instances and hosts: one file each, fixed size forever.

Layout under the metrics directory:
    vms/<instance_id>.rrd   samples of one instance (data sources: data_sources.py)
    hosts/<host>.rrd        samples of one host
    deleted/<instance_id>   tombstone: the instance is gone; its mtime is when. Its file is kept
                            RETENTION seconds (still readable), then purge() removes it; the
                            tombstone stays TOMBSTONE_SECONDS longer so a late sample cannot
                            recreate the file.

Archives like XenServer's, each with AVERAGE, MIN and MAX: one row per step (5 s) for 10 minutes,
1 minute for 2 hours, 1 hour for a week, 1 day for a year.

A file gains a data source when a device first shows up (`rrdtool tune DS:...`, e.g. a volume
attached later); a device that goes away leaves its series unknown from then on.

Files of the first layout (`instances/<id>.rrd`: one file per instance with summed counters, 10 s
step, no MIN archives) are not migrated: their data sources cannot be split per device. They are
removed when the store opens the directory, and each instance starts a new file with its next
sample (the history before the upgrade, at most a week, is lost; logged).

No nameko here: the metrics service and the host agent wrap this in a DependencyProvider that
runs every call in a native thread (common/rrd/threaded.py: rrdtool blocks).
"""
import contextlib
import logging
import os
import re
import shutil
import time
import uuid

from common.rrd import lib as rrdtool
from eventlet.patcher import original

from common.errors import InvalidInput
from common.rrd.cached import RrdCached
from common.rrd.sources import host_values, kind_of, values_formatter, vm_values

log = logging.getLogger(__name__)

MINUTE, HOUR, DAY = 60, 3600, 86400
WEEK, YEAR = 7 * DAY, 365 * DAY
# (seconds per row, seconds kept); the first row size is the step itself.
ARCHIVES = ((None, 10 * MINUTE), (MINUTE, 2 * HOUR), (HOUR, WEEK), (DAY, YEAR))
CONSOLIDATIONS = ("AVERAGE", "MIN", "MAX")
# How long a tombstone outlives the file it stands for, keeping late (redelivered) samples out.
TOMBSTONE_SECONDS = DAY
DEFAULT_RETENTION = WEEK
MAX_KNOWN_IDS = 100_000
OLD_LAYOUT_DIR = "instances"

# Native locks even in a monkey-patched process: the service calls in from native threads (tpool),
# where a green lock cannot block.
threading = original("threading")

VM, HOST = "vm", "host"
KIND_DIRS = {VM: "vms", HOST: "hosts"}
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

# What became of a sample given to MetricsStore.store.
STORED = "stored"
STALE = "stale"       # not newer than what the file holds: a redelivery or an old sample
DELETED = "deleted"   # the instance was deleted; its file is not recreated
FAILED = "failed"     # rrdtool (or rrdcached) refused it for another reason: logged


def canonical_instance_id(instance_id):
    """The instance id as a lowercase hyphenated UUID, safe to put in a path; else InvalidInput."""
    try:
        return str(uuid.UUID(str(instance_id)))
    except (TypeError, ValueError, AttributeError):
        raise InvalidInput(f"instance_id {instance_id!r} is not a UUID",
                           {"instance_id": ["not a UUID"]}) from None


def checked_host_name(host):
    if not isinstance(host, str) or not _HOST_NAME.match(host):
        raise InvalidInput(f"host {host!r} is not a host name", {"host": ["not a host name"]})
    return host


def archive_args(step):
    """RRA definitions scaled to `step` seconds: (steps per row, rows) per archive and CF."""
    args = []
    for row_seconds, kept in ARCHIVES:
        per_row = max(1, (row_seconds or step) // step)
        rows = max(1, kept // (per_row * step))
        args += [f"RRA:{cf}:0.5:{per_row}:{rows}" for cf in CONSOLIDATIONS]
    return args


def ds_arg(name, step):
    heartbeat = 3 * step  # two missed samples in a row are tolerated, a third makes a gap
    minimum = "0" if kind_of(name) == "DERIVE" else "U"
    return f"DS:{name}:{kind_of(name)}:{heartbeat}:{minimum}:U"


def create_args(step, names):
    return [ds_arg(name, step) for name in names] + archive_args(step)


class MetricsStore:
    """rrdtool files of all instances and hosts under `directory`; `step` seconds per sample.

    With `daemon` (rrdcached's address, e.g. unix:/run/rrdcached.sock) samples go to rrdcached,
    a host's batch in one request, and it writes each file now and then with everything it
    gathered; every read and change of a file is made with `--daemon`, so librrd flushes the
    file's cached values first. Without, each sample is an `rrdtool update` of its file."""

    def __init__(self, directory, step=5, now=time.time, retention=DEFAULT_RETENTION, daemon=None):
        self.directory = directory
        self.cache = RrdCached(daemon) if daemon else None
        # For librrd's calls that read or change a file: flush its cached values first.
        self.daemon_args = ("--daemon", daemon) if daemon else ()
        self.step = int(step)
        if self.step < 1:
            raise ValueError("STEP must be at least 1 second")
        self.retention = int(retention)
        self.now = now
        self.tombstones_dir = os.path.join(directory, "deleted")
        for sub in (*KIND_DIRS.values(), "deleted"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        self.discarded_old_files = self._discard_old_layout()
        # Per-file state, so a 5 s sample costs one rrdtool call: data source names (and the
        # update template made of them) and last update time. A file in `_last` is known to exist:
        # its sample needs no stat; drop() and purge() forget it, and a file removed behind our
        # back (another replica's purge) is noticed by rrdtool and looked at again (_write).
        self._lock = threading.Lock()
        self._file_locks = {}
        self._names = {}
        self._layouts = {}
        self._last = {}
        # The paths of the instance ids seen, as sent: a UUID parsed once, not per sample.
        self._vm_paths = {}
        # Instances this process deleted (canonical ids): a batch's listing of the tombstones may
        # predate one.
        self._deleted_here = set()

    def _discard_old_layout(self):
        old = os.path.join(self.directory, OLD_LAYOUT_DIR)
        if not os.path.isdir(old):
            return 0
        count = sum(1 for name in os.listdir(old) if name.endswith(".rrd"))
        shutil.rmtree(old, ignore_errors=True)
        log.warning("removed %d metrics file(s) of the old layout under %s: their instances start "
                    "new files with their next sample", count, old)
        return count

    def path_of(self, instance_id):
        return self._path(VM, canonical_instance_id(instance_id))

    def _vm_files(self, instance_id):
        """(canonical id, file path, tombstone path) of an instance id as given; InvalidInput."""
        files = self._vm_paths.get(instance_id)
        if files is None:
            canonical = canonical_instance_id(instance_id)
            files = (canonical, self._path(VM, canonical), os.path.join(self.tombstones_dir, canonical))
            with self._lock:
                if len(self._vm_paths) >= MAX_KNOWN_IDS:  # bounded: instances come and go for years
                    self._vm_paths.clear()
                self._vm_paths[instance_id] = files
        return files

    def host_path(self, host):
        return self._path(HOST, checked_host_name(host))

    def _path(self, kind, name):
        return os.path.join(self.directory, KIND_DIRS[kind], f"{name}.rrd")

    def _tombstone_of(self, instance_id):
        return os.path.join(self.tombstones_dir, canonical_instance_id(instance_id))

    def known(self, kind):
        names = sorted(os.listdir(os.path.join(self.directory, KIND_DIRS[kind])))
        return [name[:-4] for name in names if name.endswith(".rrd")]

    def known_instances(self):
        return self.known(VM)

    def is_deleted(self, instance_id):
        return os.path.exists(self._tombstone_of(instance_id))

    def names_of(self, path):
        """The data source names of a file, in file order."""
        with self._lock:
            names = self._names.get(path)
        if names is None:
            info = rrdtool.info(path)
            indexed = {key[3:-len("].index")]: value for key, value in info.items()
                       if key.startswith("ds[") and key.endswith("].index")}
            names = sorted(indexed, key=indexed.get)
            with self._lock:
                self._names[path] = names
        return names

    def _file_lock(self, path):
        with self._lock:
            return self._file_locks.setdefault(path, threading.Lock())

    # -- writing --------------------------------------------------------------------------

    def store(self, instance_id, at, sample):
        """Add one domain sample (hostagent DomainSampleSchema) taken at unix time `at`.

        Returns STORED, or why it was dropped instead of raising: STALE (not newer than what the
        file holds; at-least-once delivery brings samples again) or DELETED.
        """
        return self._store_vm(instance_id, at, sample, None)

    def store_batch(self, at, samples):
        """The domain samples of one host agent's batch, all taken at `at`: the outcome of
        store() for each, in order. The tombstones are listed once for the batch instead of
        looked up per sample (a stat each, and the native thread gives up the GIL for each);
        deletions made by this process meanwhile are seen too (delete() notes them). librrd's lock
        is taken once for the batch: batches of several hosts wait for each other whole instead
        of taking turns at each update. With rrdcached, the batch is one request."""
        # With rrdcached the updates are a request to it: librrd is called only to make or tune
        # a file, and takes its lock for that call alone (a graph or an alarm's read goes on).
        with rrdtool.held() if self.cache is None else contextlib.nullcontext():
            tombstones = frozenset(os.listdir(self.tombstones_dir))
            return self._write_all(at, [self._vm_item(sample["instance_id"], sample, tombstones)
                                        for sample in samples])

    def _store_vm(self, instance_id, at, sample, tombstones):
        """`tombstones`: the names in deleted/ listed just before, or None to look."""
        return self._write_all(at, [self._vm_item(instance_id, sample, tombstones)])[0]

    def _vm_item(self, instance_id, sample, tombstones):
        """What _write_all takes for a domain sample: (path, values, tombstone), or DELETED."""
        canonical, path, tombstone = self._vm_files(instance_id)
        # Never cached across batches: another replica may have deleted the instance.
        if tombstones is None:
            deleted = os.path.exists(tombstone)
        else:
            deleted = canonical in tombstones or canonical in self._deleted_here
        return DELETED if deleted else (path, vm_values(sample), tombstone)  # a deleted file stays as it was

    def store_host(self, host, at, sample):
        """Add one host sample (hostagent HostSampleSchema); STORED or STALE."""
        return self._write_all(at, [(self.host_path(host), host_values(sample), None)])[0]

    def _write_all(self, at, items, again=False):
        """Store samples taken at `at`, each (path, values, tombstone or None) or DELETED: the
        outcome of each. Files are made or given new data sources first, one at a time under
        their lock; the updates then go in one run (one request to rrdcached). Two writers of one
        file, in this process or another replica, are ordered by rrdtool itself: the later of two
        updates at one time is refused as not newer, STALE."""
        # Whole seconds: rrdtool reports a file's last update in whole seconds, so comparing
        # against it is exact only if that is all we ever write.
        at = int(at)
        outcomes, pending = [DELETED] * len(items), []
        for index, item in enumerate(items):
            if item == DELETED:
                continue
            path, values, tombstone = item
            with self._file_lock(path):
                prepared = self._prepare(path, at, values)
            if prepared == STALE:
                outcomes[index] = STALE
            else:
                pending.append((index, item, prepared))
        errors = self._apply([(item[0], *prepared) for _index, item, prepared in pending])
        for number, (index, (path, values, tombstone), _prepared) in enumerate(pending):
            error = errors.get(number)
            if error is None:
                with self._lock:
                    self._last[path] = max(at, self._last.get(path, at))
                outcomes[index] = STORED
            else:
                outcomes[index] = self._refused(path, at, values, tombstone, error, again)
        return outcomes

    def _prepare(self, path, at, values):
        """(template, update) of a sample for its file, made or tuned if need be; or STALE."""
        with self._lock:
            last = self._last.get(path)
        if last is None:  # not known yet: a new file, or one to read
            if not os.path.exists(path):
                self._create(path, at - 1, list(values))
            elif at <= self._last_update(path):
                return STALE
        elif at <= last:
            return STALE
        known, template, format_values = self._layout(path)
        new = [name for name in values if name not in known]
        if new:
            # With the daemon's address librrd flushes the file's cached updates first.
            rrdtool.tune(path, *self.daemon_args, *(ds_arg(name, self.step) for name in new))
            with self._lock:
                self._names.pop(path, None)
                self._layouts.pop(path, None)
            known, template, format_values = self._layout(path)
        # Every data source of the file in its order: one the sample lacks (a detached disk) is
        # "U", as leaving it out of the template would make it (rrdcached takes no template).
        return template, f"{at}:{format_values(values)}"

    def _apply(self, updates):
        """[(path, template, update)] written: {index: error} of those refused."""
        if self.cache is not None:
            return self.cache.update_batch([(path, update) for path, _template, update in updates])
        errors = {}
        for index, (path, template, update) in enumerate(updates):
            try:
                rrdtool.update(path, "--template", template, update)
            except rrdtool.OperationalError as exc:
                errors[index] = str(exc)
        return errors

    def _refused(self, path, at, values, tombstone, error, again):
        """The outcome of an update rrdtool (or rrdcached) refused with `error`."""
        if "illegal attempt to update" in error:
            # Another process (a second replica on the same directory) got there first.
            with self._lock:
                self._last.pop(path, None)
            return STALE
        if not again and not os.path.exists(path):
            # Removed since we last wrote it (another replica's purge, a host agent's drop):
            # start over, as for a file never seen, unless that was the instance's deletion.
            self._forget_layout(path)
            if tombstone is not None and os.path.exists(tombstone):
                return DELETED
            return self._write_all(at, [(path, values, tombstone)], again=True)[0]
        log.warning("a sample for %s at %s was refused: %s", path, at, error)
        return FAILED

    def _layout(self, path):
        """(its data source names as a set, the update template, the function formatting a
        sample's values in that order) of a file, cached."""
        with self._lock:
            layout = self._layouts.get(path)
        if layout is None:
            names = self.names_of(path)
            layout = (frozenset(names), ":".join(names), values_formatter(names))
            with self._lock:
                self._layouts[path] = layout
        return layout

    def _last_update(self, path):
        with self._lock:
            last = self._last.get(path)
        return rrdtool.last(*self.daemon_args, path) if last is None else last

    def _create(self, path, start, names):
        try:
            rrdtool.create(path, "--start", str(start), "--step", str(self.step), "--no-overwrite",
                           *create_args(self.step, names))
        except rrdtool.OperationalError:
            if not os.path.exists(path):  # anything but "a racing replica created it" is real
                raise

    def _remove(self, path):
        """Remove a file (what rrdcached holds for it first); whether it was there."""
        if self.cache is not None:
            self.cache.forget(path)
        try:
            os.unlink(path)
            existed = True
        except FileNotFoundError:
            existed = False
        self._forget(path)
        return existed

    def _forget(self, path):
        self._forget_layout(path)
        with self._lock:
            self._file_locks.pop(path, None)

    def _forget_layout(self, path):
        with self._lock:
            for cache in (self._names, self._layouts, self._last):
                cache.pop(path, None)

    def drop(self, instance_id):
        """Remove an instance's file without a tombstone (a host agent's copy of a VM that left
        the host: it may come back, by migration). Safe to repeat."""
        path = self.path_of(instance_id)
        with self._file_lock(path):
            self._remove(path)

    def delete(self, instance_id):
        """The instance is gone: its tombstone is written now (a repeat keeps the first time), its
        file stays readable for the retention time. Returns whether there was a file."""
        instance_id = canonical_instance_id(instance_id)
        path = self.path_of(instance_id)
        with self._file_lock(path):
            tombstone = self._tombstone_of(instance_id)
            if not os.path.exists(tombstone):
                with open(tombstone, "w"):
                    pass
                os.utime(tombstone, (self.now(), self.now()))  # aged by our clock, like purge
            with self._lock:
                self._deleted_here.add(instance_id)
            existed = os.path.exists(path)
        if self.retention <= 0:
            self.purge()
        return existed

    def purge(self):
        """Remove the files of instances deleted more than the retention time ago, and the
        tombstones that have outlived their file by TOMBSTONE_SECONDS. Returns the ids whose
        file went. Safe to repeat and to run from several replicas."""
        now = self.now()
        removed = []
        for name in os.listdir(self.tombstones_dir):
            tombstone = os.path.join(self.tombstones_dir, name)
            try:
                deleted_at = os.stat(tombstone).st_mtime
            except FileNotFoundError:
                continue
            if deleted_at > now - self.retention:
                continue
            path = self._path(VM, name)
            with self._file_lock(path):
                if self._remove(path):
                    removed.append(name)
            if deleted_at < now - self.retention - TOMBSTONE_SECONDS:
                with self._lock:
                    self._deleted_here.discard(name)
                try:
                    os.unlink(tombstone)
                except FileNotFoundError:
                    pass
        return removed
