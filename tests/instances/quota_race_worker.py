"""One of several processes (as replicas are) creating instances in one project at the same moment,
for test_quotas' race. Each pauses between counting the usage and writing its instance (a slow
replica), so without the quota lock the processes would surely count the same usage and together
go over. Says `ready` once connected, starts on a line on stdin, then prints
{"accepted": n, "refused": n}.

    python -m tests.instances.quota_race_worker DATABASE_URL USER_ID ATTEMPTS LIMITS_JSON
"""
import json
import sys
import time

from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import QuotaExceeded
from services.instances import quotas
from tests.instances.fakes import PROJECT, new_instance

PAUSE_AFTER_COUNTING = 0.01


def slow_counting(count):
    def counted_then_paused(*args, **kwargs):
        usage = count(*args, **kwargs)
        time.sleep(PAUSE_AFTER_COUNTING)
        return usage
    return counted_then_paused


def main(url, user_id, attempts, limits):
    quotas.project_usage = slow_counting(quotas.project_usage)
    engine = make_engine(url)
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    actor = {"id": user_id, "username": f"u{user_id}", "role": "user", "projects": [{"id": PROJECT, "role": "member"}]}
    session.connection()  # connected before the start, so every process starts at once
    session.commit()
    print("ready", flush=True)
    sys.stdin.readline()
    accepted = refused = 0
    for attempt in range(attempts):
        try:
            new_instance(session, f"vm-{attempt}", actor=actor, limits=limits)
            accepted += 1
        except QuotaExceeded:
            refused += 1
    session.close()
    engine.dispose()
    print(json.dumps({"accepted": accepted, "refused": refused}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))
