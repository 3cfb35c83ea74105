"""A MetricsStore and its readers with every call in a native thread (eventlet.tpool): rrdtool
blocks, and a graph or a year of rrd_updates takes long enough to stall every other greenthread
of the process."""
import collections

from eventlet import semaphore, tpool

from common.rrd import alarm_data, read as rrd_read


class Metrics:
    """The store and its readers, off the hub."""

    def __init__(self, store):
        self.raw = store
        self._host_turns = collections.defaultdict(semaphore.Semaphore)

    def store(self, instance_id, at, sample):
        return tpool.execute(self.raw.store, instance_id, at, sample)

    def store_batch(self, at, samples, host=None):
        """A host agent's domains, in one native-thread call (a tpool round trip per sample cost
        more than its rrdtool update); the outcome of each, in order. The batches of one `host`
        are stored in the order they were handed in (a green semaphore's waiters are first come,
        first served; librrd's native lock is not): a backlog handled by several workers at once
        would otherwise store a newer batch first and drop the older one as stale."""
        if host is None:
            return tpool.execute(self.raw.store_batch, at, samples)
        with self._host_turns[host]:
            return tpool.execute(self.raw.store_batch, at, samples)

    def store_host(self, host, at, sample):
        return tpool.execute(self.raw.store_host, host, at, sample)

    def delete(self, instance_id):
        return tpool.execute(self.raw.delete, instance_id)

    def record(self, at, samples, host=None, host_sample=None):
        """A host agent's batch: its domains' samples (and its own); the files of VMs no longer
        in the batch are dropped."""
        return tpool.execute(self._record, at, samples, host, host_sample)

    def _record(self, at, samples, host, host_sample):
        present = {sample["instance_id"] for sample in samples}
        for sample in samples:
            self.raw.store(sample["instance_id"], at, sample)
        if host is not None and host_sample is not None:
            self.raw.store_host(host, at, host_sample)
        for instance_id in set(self.raw.known_instances()) - present:
            self.raw.drop(instance_id)

    def purge(self):
        return tpool.execute(self.raw.purge)

    def series(self, instance_id, seconds):
        return tpool.execute(rrd_read.series, self.raw, instance_id, seconds)

    def rrd_updates(self, **query):
        return tpool.execute(lambda: rrd_read.rrd_updates(self.raw, **query))

    def vm_rrd(self, instance_id):
        return tpool.execute(rrd_read.vm_rrd, self.raw, instance_id)

    def alarm_samples_many(self, reads):
        """The samples of each (instance_id, host, metric, start, end) of `reads`, in one
        native-thread call (a batch's judgements): a list in the same order, where a read that
        failed is its exception."""
        return tpool.execute(_each_alarm_read, self.raw, reads)


def _each_alarm_read(store, reads):
    results = []
    for instance_id, host, metric, start, end in reads:
        try:
            if instance_id is not None:
                results.append(alarm_data.instance_samples(store, instance_id, metric, start, end))
            else:
                results.append(alarm_data.host_samples(store, host, metric, start, end))
        except Exception as exc:  # one alarm's read (a file being purged) spares the others
            results.append(exc)
    return results
