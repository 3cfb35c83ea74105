"""One network-service replica's worth of allocations, as an OS process (tests/instances/racing.py
releases several at once): `python -m tests.network.allocator DATABASE_URL SUBNET PREFIX COUNT
[release]` allocates COUNT addresses for owners PREFIX-0..; with `release`, it then releases them
all. Prints one line per address: owner ip mac."""
import sys

from sqlalchemy.orm import sessionmaker

from common.db import make_engine
from services.network import addresses


def main(url, subnet, prefix, count, then=None):
    engine = make_engine(url)
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    print("ready", flush=True)
    sys.stdin.readline()   # `go`
    got = [addresses.allocate_address(session, f"{prefix}-{n}", subnet)[0] for n in range(int(count))]
    if then == "release":
        for address in got:
            addresses.release_address(session, address["owner"])
    for address in got:
        print(address["owner"], address["ip"], address["mac"])
    session.close()
    engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:])
