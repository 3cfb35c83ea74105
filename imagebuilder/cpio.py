"""A gzipped "newc" cpio writer, the format the Linux kernel unpacks as an initramfs.

Written in Python because `cpio` is not installed on the build machines, and because it can add
device nodes (/dev/console) without mknod and with fixed owners and timestamps, so the archive
does not depend on who builds it or when.
"""
import gzip
import os
import stat

TRAILER = "TRAILER!!!"


def _header(ino, mode, nlink, size, name, mtime=0, rdev_major=0, rdev_minor=0):
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev_major, rdev_minor, len(encoded), 0)
    header = b"070701" + b"".join(b"%08X" % value for value in fields) + encoded
    return header + b"\0" * (-len(header) % 4)


class CpioWriter:
    def __init__(self, fileobj):
        self.out, self.ino, self.names = fileobj, 300000, set()

    def _entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name = name.strip("/") or "."
        if name in self.names:
            raise ValueError(f"duplicate cpio entry {name}")
        self.names.add(name)
        self.ino += 1
        self.out.write(_header(self.ino, mode, nlink, len(data), name, 0, *rdev))
        self.out.write(data + b"\0" * (-len(data) % 4))

    def add_dir(self, name, perm=0o755):
        self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def add_file(self, name, data, perm=0o644):
        self._entry(name, stat.S_IFREG | perm, data)

    def add_symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_char_device(self, name, major, minor, perm=0o600):
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def add_tree(self, root):
        """Every directory, file and symlink under `root`, sorted (reproducible archives)."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            if rel != ".":
                self.add_dir(rel, stat.S_IMODE(os.lstat(dirpath).st_mode))
            for fname in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
                path = os.path.join(dirpath, fname)
                name = os.path.normpath(os.path.join(rel, fname))
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    self.add_symlink(name, os.readlink(path))
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        self.add_file(name, f.read(), stat.S_IMODE(st.st_mode))
            # os.walk does not descend into symlinked directories (followlinks=False), good.

    def close(self):
        self._entry(TRAILER, 0, nlink=1)


def write_initramfs(path, tree_root, devices=(("dev/console", 5, 1), ("dev/null", 1, 3)), level=6):
    """Pack `tree_root` into a gzipped newc cpio at `path`, plus device nodes the kernel and /init
    need before devtmpfs is mounted (without /dev/console, init would start with no console)."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz:
        writer = CpioWriter(gz)
        writer.add_tree(tree_root)
        if "dev" not in writer.names:
            writer.add_dir("dev")
        for name, major, minor in devices:
            writer.add_char_device(name, major, minor)
        writer.close()
    return path


def read_newc(data):
    """Parse an uncompressed newc archive: [(name, mode, data, (rdev_major, rdev_minor))].
    For tests and for inspecting built images."""
    entries, pos = [], 0
    while True:
        if data[pos:pos + 6] != b"070701":
            raise ValueError(f"bad cpio magic at {pos}")
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == TRAILER:
            return entries
        entries.append((name, mode, body, (rmaj, rmin)))
