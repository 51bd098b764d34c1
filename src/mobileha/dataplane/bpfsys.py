"""The ``bpf()`` system call through ctypes: BPF maps, and loading an object with libbpf.

Map operations (lookup, update, delete, and their ``BPF_MAP_*_BATCH`` forms) are direct
``bpf()`` calls on the map's file descriptor: no process per update, and one call for a
whole table on bulk download and takeover. Each :class:`BpfMap` keeps its own attribute and
key/value buffers, so a single update is two ``memmove`` and one system call.

Loading (ELF parsing, BTF, map creation and relocation) is left to libbpf (``libbpf.so.1``,
Debian package ``libbpf1``, a dependency of iproute2), called through ctypes:
:func:`load_object` opens an object file, sizes its maps, loads it and returns the file
descriptors of its programs and maps. The verifier's log is returned in the error when a
program is refused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

# <linux/bpf.h> commands
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_MAP_LOOKUP_BATCH = 24
BPF_MAP_UPDATE_BATCH = 26
BPF_MAP_DELETE_BATCH = 27
# update flags
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
# map types whose values are per CPU
_PERCPU_TYPES = {5, 6, 10}  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "riscv64": 280, "ppc64le": 361}


class BpfError(OSError):
    """A ``bpf()`` call or a libbpf load failed (``errno`` is set)."""


class _MapAttr(ctypes.Structure):  # union bpf_attr, BPF_MAP_*_ELEM
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _BatchAttr(ctypes.Structure):  # union bpf_attr, BPF_MAP_*_BATCH
    _fields_ = [
        ("in_batch", ctypes.c_uint64),
        ("out_batch", ctypes.c_uint64),
        ("keys", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("count", ctypes.c_uint32),
        ("map_fd", ctypes.c_uint32),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _InfoAttr(ctypes.Structure):  # union bpf_attr, BPF_OBJ_GET_INFO_BY_FD
    _fields_ = [
        ("bpf_fd", ctypes.c_uint32),
        ("info_len", ctypes.c_uint32),
        ("info", ctypes.c_uint64),
    ]


class _MapInfo(ctypes.Structure):  # struct bpf_map_info (leading fields)
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * 16),
    ]


_libc: ctypes.CDLL | None = None
_nr: int | None = None


def _syscall() -> tuple[ctypes.CDLL, int]:
    global _libc, _nr
    if _libc is None or _nr is None:
        nr = _SYSCALL_NR.get(platform.machine())
        if nr is None:
            raise BpfError(errno.ENOSYS, f"bpf(): unknown syscall number on {platform.machine()}")
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        _libc, _nr = lib, nr
    return _libc, _nr


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    """One ``bpf(cmd, &attr, sizeof attr)`` call; raises :class:`BpfError` on failure."""
    libc, nr = _syscall()
    rc = int(libc.syscall(nr, cmd, ctypes.byref(attr), ctypes.sizeof(attr)))
    if rc < 0:
        e = ctypes.get_errno()
        raise BpfError(e, f"bpf({cmd}): {os.strerror(e)}")
    return rc


def possible_cpus() -> int:
    """Number of possible CPUs: the length of a per-CPU map value array."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
    except OSError:
        return os.cpu_count() or 1
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += (int(hi) if hi else int(lo)) - int(lo) + 1
    return n


def map_info(fd: int) -> _MapInfo:
    info = _MapInfo()
    attr = _InfoAttr(fd, ctypes.sizeof(info), ctypes.addressof(info))
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return info


class BpfMap:
    """A BPF map by file descriptor (the descriptor stays owned by whoever opened it).

    Keys and values are ``bytes`` in the map's layout. A per-CPU map's value is the
    concatenation of one value per possible CPU, each padded to 8 bytes (:attr:`stride`);
    :meth:`update` of a per-CPU map takes one CPU's value and writes it to every CPU.
    """

    def __init__(self, fd: int, name: str = "") -> None:
        info = map_info(fd)
        self.fd = fd
        self.name = name or info.name.decode()
        self.key_size = int(info.key_size)
        self.value_size = int(info.value_size)
        self.max_entries = int(info.max_entries)
        self.percpu = int(info.type) in _PERCPU_TYPES
        self.ncpus = possible_cpus() if self.percpu else 1
        self.stride = (self.value_size + 7) & ~7 if self.percpu else self.value_size
        self.full_value_size = self.stride * self.ncpus
        self._lock = threading.Lock()
        self._key = ctypes.create_string_buffer(self.key_size)
        self._value = ctypes.create_string_buffer(self.full_value_size)
        self._attr = _MapAttr(fd, 0, ctypes.addressof(self._key), ctypes.addressof(self._value), 0)
        # the kernel refuses attribute fields a command does not use unless they are zero
        self._del_attr = _MapAttr(fd, 0, ctypes.addressof(self._key), 0, 0)

    def _full(self, value: bytes) -> bytes:
        if len(value) == self.full_value_size:
            return value
        if len(value) != self.value_size:
            raise ValueError(f"{self.name}: value of {len(value)} bytes, not {self.value_size}")
        if not self.percpu:
            return value
        return (value + bytes(self.stride - self.value_size)) * self.ncpus

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        if len(value) != self.full_value_size:
            value = self._full(value)
        with self._lock:
            ctypes.memmove(self._key, key, self.key_size)
            ctypes.memmove(self._value, value, self.full_value_size)
            self._attr.flags = flags
            bpf(BPF_MAP_UPDATE_ELEM, self._attr)

    def delete(self, key: bytes) -> bool:
        """Delete ``key``; False when it was not there."""
        with self._lock:
            ctypes.memmove(self._key, key, self.key_size)
            try:
                bpf(BPF_MAP_DELETE_ELEM, self._del_attr)
            except BpfError as e:
                if e.errno == errno.ENOENT:
                    return False
                raise
        return True

    def lookup(self, key: bytes) -> bytes | None:
        with self._lock:
            ctypes.memmove(self._key, key, self.key_size)
            try:
                bpf(BPF_MAP_LOOKUP_ELEM, self._attr)
            except BpfError as e:
                if e.errno == errno.ENOENT:
                    return None
                raise
            return self._value.raw

    def update_batch(self, keys: bytes, values: bytes, flags: int = BPF_ANY) -> int:
        """Write ``len(keys) // key_size`` entries in one ``BPF_MAP_UPDATE_BATCH`` call
        (``values`` holds full values: per CPU for a per-CPU map). Returns the count."""
        n = len(keys) // self.key_size
        if n == 0:
            return 0
        if len(keys) != n * self.key_size or len(values) != n * self.full_value_size:
            raise ValueError(f"{self.name}: batch of {n} keys with {len(values)} value bytes")
        kb = ctypes.create_string_buffer(keys, len(keys))
        vb = ctypes.create_string_buffer(values, len(values))
        attr = _BatchAttr(0, 0, ctypes.addressof(kb), ctypes.addressof(vb), n, self.fd, flags, 0)
        bpf(BPF_MAP_UPDATE_BATCH, attr)
        return int(attr.count)

    def delete_batch(self, keys: bytes) -> int:
        """Delete the keys in one call; it stops at the first absent key (ENOENT, not an
        error here): returns how many were deleted."""
        n = len(keys) // self.key_size
        if n == 0:
            return 0
        kb = ctypes.create_string_buffer(keys, len(keys))
        attr = _BatchAttr(0, 0, ctypes.addressof(kb), 0, n, self.fd, 0, 0)
        try:
            bpf(BPF_MAP_DELETE_BATCH, attr)
        except BpfError as e:
            if e.errno != errno.ENOENT:
                raise
        return int(attr.count)

    def items(self, chunk: int = 4096) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, full value) of a hash or array map, ``chunk`` entries per call."""
        ks, vs = self.key_size, self.full_value_size
        kb = ctypes.create_string_buffer(ks * chunk)
        vb = ctypes.create_string_buffer(vs * chunk)
        token_in = ctypes.create_string_buffer(max(ks, 8))
        token_out = ctypes.create_string_buffer(max(ks, 8))
        first = True
        while True:
            attr = _BatchAttr(
                0 if first else ctypes.addressof(token_in),
                ctypes.addressof(token_out),
                ctypes.addressof(kb),
                ctypes.addressof(vb),
                chunk,
                self.fd,
                0,
                0,
            )
            done = False
            try:
                bpf(BPF_MAP_LOOKUP_BATCH, attr)
            except BpfError as e:
                if e.errno != errno.ENOENT:
                    raise
                done = True  # the last (possibly partial) chunk
            n = int(attr.count)
            keys, values = kb.raw, vb.raw
            for i in range(n):
                yield keys[i * ks : (i + 1) * ks], values[i * vs : (i + 1) * vs]
            if done or n == 0:
                return
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False

    def clear(self) -> None:
        keys = b"".join(k for k, _ in self.items())
        self.delete_batch(keys)


# ------------------------------------------------------------------------------ libbpf


@dataclass
class LoadedObject:
    """A loaded BPF object: program and map file descriptors by name. ``close()`` releases
    them (programs attached elsewhere, e.g. to tc, stay loaded until detached)."""

    programs: Mapping[str, int]
    maps: Mapping[str, BpfMap]
    _handle: int
    _lib: ctypes.CDLL

    def close(self) -> None:
        if self._handle:
            self._lib.bpf_object__close(ctypes.c_void_p(self._handle))
            self._handle = 0


_libbpf: ctypes.CDLL | None = None


def libbpf() -> ctypes.CDLL:
    """libbpf through ctypes, with the signatures used here."""
    global _libbpf
    if _libbpf is not None:
        return _libbpf
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise BpfError(errno.ENOENT, f"libbpf not found ({name}): install libbpf1") from e
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    sigs: dict[str, tuple[object, list[object]]] = {
        "bpf_object__open_file": (vp, [cp, vp]),
        "bpf_object__load": (ctypes.c_int, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__find_program_by_name": (vp, [vp, cp]),
        "bpf_object__find_map_by_name": (vp, [vp, cp]),
        "bpf_program__fd": (ctypes.c_int, [vp]),
        "bpf_program__set_log_buf": (ctypes.c_int, [vp, vp, ctypes.c_size_t]),
        "bpf_map__fd": (ctypes.c_int, [vp]),
        "bpf_map__set_max_entries": (ctypes.c_int, [vp, ctypes.c_uint32]),
        "libbpf_set_print": (vp, [vp]),
    }
    for fn, (res, args) in sigs.items():
        f = getattr(lib, fn)
        f.restype = res
        f.argtypes = args
    _libbpf = lib
    return lib


_load_lock = threading.Lock()


def load_object(
    path: str,
    programs: tuple[str, ...],
    maps: tuple[str, ...],
    max_entries: Mapping[str, int] | None = None,
) -> LoadedObject:
    """Open, size and load the BPF object ``path``; return its programs' and maps' fds.

    Raises :class:`BpfError` with the verifier's log (last lines) when a program is refused.
    """
    lib = libbpf()
    with _load_lock:  # libbpf's print callback is process-wide
        old_print = lib.libbpf_set_print(None)
        try:
            return _load(lib, path, programs, maps, dict(max_entries or {}))
        finally:
            lib.libbpf_set_print(old_print)


def _load(
    lib: ctypes.CDLL,
    path: str,
    programs: tuple[str, ...],
    maps: tuple[str, ...],
    max_entries: dict[str, int],
) -> LoadedObject:
    ctypes.set_errno(0)
    obj = lib.bpf_object__open_file(path.encode(), None)
    if not obj:
        e = ctypes.get_errno() or errno.EINVAL
        raise BpfError(e, f"cannot open BPF object {path}: {os.strerror(e)}")
    try:
        for name, n in max_entries.items():
            m = lib.bpf_object__find_map_by_name(ctypes.c_void_p(obj), name.encode())
            if not m:
                raise BpfError(errno.ENOENT, f"{path}: no map {name!r}")
            lib.bpf_map__set_max_entries(ctypes.c_void_p(m), n)
        logs: dict[str, ctypes.Array[ctypes.c_char]] = {}
        progs: dict[str, int] = {}
        for name in programs:
            p = lib.bpf_object__find_program_by_name(ctypes.c_void_p(obj), name.encode())
            if not p:
                raise BpfError(errno.ENOENT, f"{path}: no program {name!r}")
            buf = logs[name] = ctypes.create_string_buffer(1 << 20)
            lib.bpf_program__set_log_buf(ctypes.c_void_p(p), buf, len(buf))
            progs[name] = p
        rc = lib.bpf_object__load(ctypes.c_void_p(obj))
        if rc < 0:
            detail = ""
            for name, buf in logs.items():
                text = buf.value.decode(errors="replace").strip()
                if text:
                    tail = "\n".join(text.splitlines()[-8:])
                    detail += f"\n{name}: verifier log (last lines):\n{tail}"
            raise BpfError(-rc, f"the kernel refused {path}: {os.strerror(-rc)}{detail}")
        prog_fds = {n: int(lib.bpf_program__fd(ctypes.c_void_p(p))) for n, p in progs.items()}
        map_objs: dict[str, BpfMap] = {}
        for name in maps:
            m = lib.bpf_object__find_map_by_name(ctypes.c_void_p(obj), name.encode())
            if not m:
                raise BpfError(errno.ENOENT, f"{path}: no map {name!r}")
            map_objs[name] = BpfMap(int(lib.bpf_map__fd(ctypes.c_void_p(m))), name)
        return LoadedObject(prog_fds, map_objs, int(obj), lib)
    except BaseException:
        lib.bpf_object__close(ctypes.c_void_p(obj))
        raise


__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_NOEXIST",
    "BpfError",
    "BpfMap",
    "LoadedObject",
    "bpf",
    "libbpf",
    "load_object",
    "map_info",
    "possible_cpus",
]
