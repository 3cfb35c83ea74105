"""One of several processes (as service replicas are) charging one project's quota at the same
moment, for the quota races of test_quotas (instances) and test_volumes_logic (data volumes).
Each pauses between counting the usage and writing its row (a slow replica), so without the quota
lock the processes would surely count the same usage and together go over. Says `ready` once
connected, starts on a line on stdin, then prints {"accepted": n, "refused": n}.

    python -m tests.quota_race_worker instances|volumes DATABASE_URL USER_ID ATTEMPTS LIMITS_JSON
"""
import json
import sys
import time

from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from common.errors import QuotaExceeded

PAUSE_AFTER_COUNTING = 0.01


def slow_counting(count):
    def counted_then_paused(*args, **kwargs):
        usage = count(*args, **kwargs)
        time.sleep(PAUSE_AFTER_COUNTING)
        return usage
    return counted_then_paused


def instance_creator():
    """(create, project): an instance in the instances tests' course (the fakes' records)."""
    from services.instances import quotas
    from tests.instances.fakes import PROJECT, new_instance
    quotas.project_usage = slow_counting(quotas.project_usage)
    return (lambda session, actor, attempt, limits: new_instance(session, f"vm-{attempt}", actor=actor, limits=limits),
            PROJECT)


def volume_creator():
    """(create, project): a 1 GiB data volume in course 10."""
    from services.storage import volumes
    project = 10
    volumes.project_usage = slow_counting(volumes.project_usage)

    def create(session, actor, attempt, limits):
        request = {"name": f"u{actor['id']}-{attempt}", "size_gib": 1, "snapshot": None, "image": None}
        volumes.record_volume(session, actor, request, project, 1, "h1", limits)
    return create, project


CREATORS = {"instances": instance_creator, "volumes": volume_creator}


def main(kind, url, user_id, attempts, limits):
    create, project = CREATORS[kind]()
    engine = make_engine(url)
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    actor = {"id": user_id, "username": f"u{user_id}", "role": "user", "projects": [{"id": project, "role": "member"}]}
    session.connection()  # connected before the start, so every process starts at once
    session.commit()
    print("ready", flush=True)
    sys.stdin.readline()
    accepted = refused = 0
    for attempt in range(attempts):
        try:
            create(session, actor, attempt, limits)
            accepted += 1
        except QuotaExceeded:
            refused += 1
    session.close()
    engine.dispose()
    print(json.dumps({"accepted": accepted, "refused": refused}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]))
