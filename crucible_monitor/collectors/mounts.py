"""Which filesystems and block devices the system collector reports, read from the mount table and diskstats.

Pseudo filesystems (proc, tmpfs, cgroup...) are left out unless asked for; a device mounted several times (bind
mounts) counts once; partitions and virtual block devices (loop, ram, zram...) are left out of disk I/O.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["PSEUDO_FSTYPES", "REMOTE_FSTYPES", "Mount", "printable", "select_mounts", "unescape", "whole_disks"]

PSEUDO_FSTYPES = frozenset(
    [
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fuse.lxcfs",
        "fusectl",
        "hugetlbfs",
        "iso9660",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "ramfs",
        "rootfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    ]
)
"""Filesystem types left out unless named in ``include_fstypes``. overlay is kept: container roots are overlay."""

REMOTE_FSTYPES = frozenset(
    [
        "9p",
        "afs",
        "ceph",
        "cifs",
        "davfs",
        "fuse.glusterfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.sshfs",
        "glusterfs",
        "lustre",
        "nfs",
        "nfs4",
        "smb3",
        "smbfs",
    ]
)
"""Filesystem types whose ``statvfs`` can hang: asked from a thread with a timeout."""

_SKIP_DISKS = ("loop", "ram", "zram", "fd", "sr")


@dataclass(frozen=True, slots=True)
class Mount:
    """A filesystem the collector reports: where it is mounted, its type, and its sample labels."""

    path: str
    fstype: str
    labels: Mapping[str, str]


def unescape(field: str) -> str:
    r"""Undo the octal escapes of /proc/mounts (``\040`` is a space)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def printable(text: str) -> str:
    """``text`` safe to store as a label: undecodable bytes (kept for syscalls) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def whole_disks(names: Iterable[str]) -> list[str]:
    """The devices of ``/proc/diskstats`` worth reporting: whole disks, not their partitions nor loop/ram/zram/fd/sr.

    A partition is a listed disk's name plus digits (``vda1``), or plus ``p`` and digits when the disk's name ends in
    a digit (``nvme0n1p1``, ``mmcblk0p2``); so ``dm-10`` is not a partition of ``dm-1``.
    """
    listed = [n for n in names if not n.startswith(_SKIP_DISKS)]
    present = set(listed)
    kept = []
    for name in listed:
        stem = name.rstrip("0123456789")
        if stem != name and (
            (stem in present and not stem[-1:].isdigit())
            or (stem.endswith("p") and stem[:-1] in present and stem[-2:-1].isdigit())
        ):
            continue
        kept.append(name)
    return kept


def select_mounts(text: str, include_fstypes: Iterable[str], exclude_mountpoints: Iterable[str]) -> list[Mount]:
    """The real filesystems of a mount table, one per device (its shortest mountpoint).

    Pseudo filesystems are left out unless their type is in ``include_fstypes``, and so are mountpoints matching
    a glob of ``exclude_mountpoints``.
    """
    keep_types = set(include_fstypes)
    excluded = list(exclude_mountpoints)
    by_path: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, path, fstype = unescape(fields[0]), unescape(fields[1]), fields[2]
        if fstype in PSEUDO_FSTYPES and fstype not in keep_types:
            continue
        if any(fnmatch.fnmatchcase(path, p) for p in excluded):
            continue
        by_path.pop(path, None)  # mounted over: the later mount is the one visible
        by_path[path] = (device, fstype)
    # A device with a "/" (/dev/vda1, server:/export, pool/dataset) is one filesystem wherever it is mounted:
    # its bind mounts go. Names such as tmpfs, overlay or none say nothing: each of those mounts is its own.
    by_device: dict[str, tuple[str, str]] = {}
    for path, (device, fstype) in by_path.items():
        key = device if "/" in device else f"\0{path}"
        seen = by_device.get(key)
        if seen is None or len(path) < len(seen[0]):
            by_device[key] = (path, fstype)
    mounts = [
        Mount(
            path,
            fstype,
            MappingProxyType({"mountpoint": printable(path), "device": printable(by_path[path][0]), "fstype": fstype}),
        )
        for path, fstype in by_device.values()
    ]
    mounts.sort(key=lambda m: m.path)
    return mounts
