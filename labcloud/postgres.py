"""A private PostgreSQL cluster (own data dir, own port, socket in its own dir) for tests and
benchmarks. PostgreSQL refuses to run as root, so it runs as the `postgres` system user that
Debian's package creates."""
import glob
import os
import shutil
import subprocess

from labcloud.rabbit import free_port


def postgres_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    return found[-1]


class PostgresCluster:
    def __init__(self, base_dir, user="labcloud"):
        self.base_dir = os.path.abspath(base_dir)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.port = free_port()
        self.user = user

    def _as_postgres(self, *argv):
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(runner + list(argv), check=True, capture_output=True, text=True, timeout=120)

    def start(self):
        os.makedirs(self.base_dir, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.base_dir, "postgres", "postgres")
        self._as_postgres(postgres_bin("initdb"), "-D", self.data_dir, "-A", "trust", "-U", self.user,
                          "--no-sync")
        self._as_postgres(postgres_bin("pg_ctl"), "-D", self.data_dir, "-w", "-l",
                          os.path.join(self.base_dir, "server.log"), "-o",
                          f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                          "start")
        return self

    def url(self, database):
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name):
        import psycopg2
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self):
        if os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            self._as_postgres(postgres_bin("pg_ctl"), "-D", self.data_dir, "-m", "fast", "-w", "stop")
