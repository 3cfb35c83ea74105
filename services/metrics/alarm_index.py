"""Which alarms of a sample batch may be due, known without a query per batch.

Every host sends a batch every step (5 s); an alarm is judged once per period (a minute or more),
so nearly every batch has nothing to judge, and asking the database each time cost more than
storing the batch. The index keeps, per instance and per host, the alarms' (id, period,
evaluated_at), read in one query of all alarms; a batch asks the database (alarms.due, unchanged)
only for the instances and host that have an alarm the index thinks due (alarms.is_due, the same
rule).

Kept true enough by: reloading when older than `max_age` seconds (an alarm made or deleted by
another replica, or judged by the timer), reloading after this container creates or deletes one
(invalidate), and marking an alarm judged when it is handed to an evaluator (take) or the
database says it was not due (judged_except). An alarm whose claim another evaluator won is given
back, so the next batch asks again (that evaluator may have judged an earlier period only). An index that thinks an alarm due when it is not costs one query; one that misses
a due alarm (a new alarm on another replica before the next reload) leaves it to the evaluation
timer, which judges every due alarm from the database.

Green, no locks: used from the service's workers, which yield only in the database query, and the
index is swapped whole after it."""
import time

from sqlalchemy import select

from services.metrics import alarms
from services.metrics.models import Alarm


class _Entry:
    """What alarms.is_due reads of an alarm."""
    __slots__ = ("id", "period", "evaluated_at")

    def __init__(self, alarm_id, period, evaluated_at):
        self.id, self.period, self.evaluated_at = alarm_id, period, evaluated_at


class Taken:
    """An alarm handed to one evaluator for a period (AlarmIndex.take)."""
    __slots__ = ("entry", "previous", "ref")

    def __init__(self, entry, ref):
        self.entry, self.ref = entry, ref
        self.previous = None if entry is None else entry.evaluated_at

    def give_back(self):
        """Its claim in the database was lost (another evaluator judged an earlier period, or
        this one): the next batch asks the database again."""
        if self.entry is not None and self.entry.evaluated_at == self.ref:
            self.entry.evaluated_at = self.previous


class AlarmIndex:
    def __init__(self, max_age, clock=time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._loaded_at = None
        self._by_id = {}
        self._by_instance = {}
        self._by_host = {}

    def invalidate(self):
        self._loaded_at = None

    def candidates(self, session, ref, instance_ids, host):
        """(the instance ids with an alarm due at `ref` as far as the index knows, the host if it
        has one, else None)."""
        self._refresh(session)
        by_instance, by_host = self._by_instance, self._by_host
        due_ids = [instance_id for instance_id in instance_ids
                   if instance_id in by_instance and _any_due(by_instance[instance_id], ref)]
        due_host = host if host in by_host and _any_due(by_host[host], ref) else None
        return due_ids, due_host

    def take(self, alarm_id, ref):
        """None when this container judges or judged the alarm at `ref`'s period already (its
        claim in the database would only fail); else a Taken, the alarm counting as judged at
        `ref` from now on, so the other workers' batches of the period leave it."""
        entry = self._by_id.get(alarm_id)
        if entry is not None and not alarms.is_due(entry, ref):
            return None
        taken = Taken(entry, ref)
        if entry is not None:
            entry.evaluated_at = ref
        return taken

    def judged_except(self, instance_ids, host, ref, pending_ids):
        """The database found the alarms of these candidates judged at `ref`'s period already,
        but those of `pending_ids` (still due: the caller claims them, judged() then)."""
        entries = [entry for instance_id in instance_ids for entry in self._by_instance.get(instance_id, ())]
        entries += self._by_host.get(host, ()) if host is not None else ()
        for entry in entries:
            if entry.id not in pending_ids and alarms.is_due(entry, ref):
                entry.evaluated_at = ref

    def _refresh(self, session):
        now = self.clock()
        if self._loaded_at is not None and now - self._loaded_at < self.max_age:
            return
        by_id, by_instance, by_host = {}, {}, {}
        rows = session.execute(select(Alarm.id, Alarm.instance_id, Alarm.host, Alarm.period,
                                      Alarm.evaluated_at)).all()
        session.commit()
        for alarm_id, instance_id, host, period, evaluated_at in rows:
            entry = by_id[alarm_id] = _Entry(alarm_id, period, evaluated_at)
            if instance_id is not None:
                by_instance.setdefault(instance_id, []).append(entry)
            if host is not None:
                by_host.setdefault(host, []).append(entry)
        self._by_id, self._by_instance, self._by_host, self._loaded_at = by_id, by_instance, by_host, now


def _any_due(entries, ref):
    return any(alarms.is_due(entry, ref) for entry in entries)
