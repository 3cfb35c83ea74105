"""The shared libraries an ELF binary needs (DT_NEEDED), read in Python.

Used to copy only the libraries dropbear needs into the initramfs instead of whole packages
(libc6 alone unpacks to ~13 MB), without running the host's ldd on foreign binaries.
"""
import os
import struct

DT_NEEDED = 1
SHT_DYNAMIC = 6


def needed(path):
    """DT_NEEDED names of a 64-bit little-endian ELF file ([] for a static binary)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = []
    for sh_name, sh_type, _f, _a, offset, size, link, _i, _al, entsize in sections:
        if sh_type != SHT_DYNAMIC:
            continue
        strtab_offset = sections[link][4]
        for pos in range(offset, offset + size, entsize or 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:
                break
            if tag == DT_NEEDED:
                start = strtab_offset + value
                names.append(data[start:data.index(b"\0", start)].decode())
    return names


def library_closure(binaries, search_dirs):
    """{soname: path} of every library the binaries need, transitively, found in search_dirs."""
    found, todo = {}, list(binaries)
    while todo:
        for name in needed(todo.pop()):
            if name in found:
                continue
            for directory in search_dirs:
                candidate = os.path.join(directory, name)
                if os.path.exists(candidate):
                    found[name] = candidate
                    todo.append(os.path.realpath(candidate))
                    break
            else:
                raise FileNotFoundError(f"library {name} not found in {search_dirs}")
    return found
