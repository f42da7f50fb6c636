"""The mount table (``/proc/self/mounts``): which of its mounts are real filesystems worth a ``statvfs``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["PSEUDO_FSTYPES", "REMOTE_FSTYPES", "Mount", "select_mounts"]

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


@dataclass(frozen=True, slots=True)
class Mount:
    """A mount kept for ``statvfs``, with the labels of its samples."""

    path: str
    fstype: str
    labels: Mapping[str, str]


def _unescape(field: str) -> str:
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


def _printable(text: str) -> str:
    """``text`` safe to store as a label: undecodable bytes (kept for syscalls) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def select_mounts(text: str, include_fstypes: Iterable[str], exclude_mountpoints: Iterable[str]) -> list[Mount]:
    """The real filesystems of a mount table, one per device (its shortest mountpoint)."""
    keep_types = set(include_fstypes)
    excluded = tuple(exclude_mountpoints)
    by_path: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, path, fstype = _unescape(fields[0]), _unescape(fields[1]), fields[2]
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
            MappingProxyType(
                {"mountpoint": _printable(path), "device": _printable(by_path[path][0]), "fstype": fstype}
            ),
        )
        for path, fstype in by_device.values()
    ]
    mounts.sort(key=lambda m: m.path)
    return mounts
