"""One of several processes (as storage replicas are) creating data volumes in one project at the
same moment, for test_volumes_logic's race. Each pauses between counting the usage and writing
its volume (a slow replica), so without the quota lock the processes would surely count the same
usage and together go over. Says `ready` once connected, starts on a line on stdin, then prints
{"accepted": n, "refused": n}.

    python -m tests.storage.volume_quota_worker DATABASE_URL USER_ID ATTEMPTS LIMITS_JSON
"""
import json
import sys
import time

from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import QuotaExceeded
from services.storage import volumes

PROJECT = 10
PAUSE_AFTER_COUNTING = 0.01


def main(url, user_id, attempts, limits):
    count = volumes.project_usage

    def counted_then_paused(*args, **kwargs):
        usage = count(*args, **kwargs)
        time.sleep(PAUSE_AFTER_COUNTING)
        return usage
    volumes.project_usage = counted_then_paused
    engine = make_engine(url)
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    actor = {"id": user_id, "username": f"u{user_id}", "role": "user", "projects": [{"id": PROJECT, "role": "member"}]}
    session.connection()  # connected before the start, so every process starts at once
    session.commit()
    print("ready", flush=True)
    sys.stdin.readline()
    accepted = refused = 0
    for attempt in range(attempts):
        request = {"name": f"u{user_id}-{attempt}", "size_gib": 1, "snapshot": None, "image": None}
        try:
            volumes.record_volume(session, actor, request, PROJECT, 1, "h1", limits)
            accepted += 1
        except QuotaExceeded:
            refused += 1
    session.close()
    engine.dispose()
    print(json.dumps({"accepted": accepted, "refused": refused}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))
