"""Network namespaces for a federation whose every process has an address of its own.

:class:`Network` makes one namespace per member (the SuperLink, the
SuperExec, each SuperNode) and a ``switch`` namespace holding a bridge. Each
member's ``eth0`` is one end of a veth pair whose other end is a port of
that bridge, and has the address ``10.201.0.N/24``; its loopback is up, for
the servers a process keeps to itself (a SuperNode's Runtime API, the health
services). Nothing is created in this machine's own namespace, so the
subnet cannot clash with the host's routes or with another test run's; only
the namespace names are global, and they carry this process's id.

Everything goes away in :meth:`Network.close`, and also when the test process
dies without closing (``kill -9`` of pytest): a reaper in a session of its
own waits for end of file on a pipe only this process holds open, then kills
every process left in the namespaces and deletes them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

SUBNET = "10.201.0"
PREFIX_LENGTH = 24
DEVICE = "eth0"
# setns(2)'s namespace type for a network namespace (<sched.h>).
_CLONE_NEWNET = 0x40000000
# Waits for the pipe to close, then removes what the namespaces hold.
_REAPER = """
cat >/dev/null
for ns in "$@"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns delete "$ns" 2>/dev/null
done
exit 0
"""

T = TypeVar("T")


def _ip(*args: str) -> None:
    """Run ``ip ARGS``; a failure raises with ip's own message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def missing() -> str | None:
    """Why network namespaces cannot be made on this machine, or ``None`` when they can.

    Returns
    -------
    str | None
        A reason that names what is missing (the ``ip`` command, root, or
        the kernel's permission), for a test's skip message.

    """
    if shutil.which("ip") is None:
        return "no `ip` command: install Debian's iproute2"
    if os.geteuid() != 0:
        return "not root: `ip netns add` needs root (CAP_SYS_ADMIN)"
    probe = f"fedapp{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except RuntimeError as err:
        return f"cannot make a network namespace: {err}"
    _ip("netns", "delete", probe)
    return None


@dataclass(frozen=True)
class Namespace:
    """One member's network namespace.

    Attributes
    ----------
    name : str
        The namespace's name (``ip netns`` lists it).
    address : str
        Its IPv4 address on the federation's subnet.
    device : str
        Its link to the switch, inside the namespace.

    """

    name: str
    address: str
    device: str = DEVICE

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this namespace (``ip netns exec`` replaces itself with it)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def set_link(self, up: bool) -> None:
        """Bring this member's link up or down, as a cable plugged in or pulled."""
        _ip("-n", self.name, "link", "set", self.device, "up" if up else "down")

    def pids(self) -> list[int]:
        """The processes inside this namespace, children of those started in it too.

        E.g. the ServerApp (``flwr-serverapp``) the SuperExec started for a run.
        """
        done = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True, timeout=30
        )
        return [int(p) for p in done.stdout.split()]

    def call(self, function: Callable[[], T]) -> T:
        """Call ``function`` with its sockets in this namespace, and return what it returns.

        A thread of its own enters the namespace (a network namespace is a
        per-thread setting) and ends with the call, so no other code of the
        test process ever runs there.
        """
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(self._entered, function).result()

    def _entered(self, function: Callable[[], T]) -> T:
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns into {self.name}: {os.strerror(errno)}")
        finally:
            os.close(fd)
        return function()


class Network:
    """A switch and one namespace per member, on the subnet ``10.201.0.0/24``.

    Parameters
    ----------
    members : Sequence[str]
        The members' names, e.g. ``["superlink", "superexec", "bank"]``; the
        n-th gets the address ``10.201.0.{n + 1}``.

    Raises
    ------
    RuntimeError
        When a namespace or link cannot be made; what was made is removed.

    """

    def __init__(self, members: Sequence[str]) -> None:
        tag = f"fedapp{os.getpid()}"
        self.members = {
            name: Namespace(f"{tag}-{name}", f"{SUBNET}.{i + 1}") for i, name in enumerate(members)
        }
        self.switch = f"{tag}-switch"
        names = [self.switch, *(ns.name for ns in self.members.values())]
        # Started before anything exists, so that no failure below can leave
        # a namespace behind; not in this process's group, so it outlives it.
        self._reaper = subprocess.Popen(
            ["sh", "-c", _REAPER, "reaper", *names],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for port, ns in enumerate(self.members.values()):
            _ip("netns", "add", ns.name)
            # Both ends are made inside their namespaces: no name in the host's.
            _ip("link", "add", ns.device, "netns", ns.name, "type", "veth",
                "peer", "name", f"port{port}", "netns", self.switch)  # fmt: skip
            _ip("-n", self.switch, "link", "set", f"port{port}", "master", "br0", "up")
            _ip("-n", ns.name, "addr", "add", f"{ns.address}/{PREFIX_LENGTH}", "dev", ns.device)
            _ip("-n", ns.name, "link", "set", ns.device, "up")
            _ip("-n", ns.name, "link", "set", "lo", "up")

    def __getitem__(self, member: str) -> Namespace:
        """The namespace of ``member``."""
        return self.members[member]

    def __contains__(self, member: object) -> bool:
        """Whether ``member`` has a namespace here."""
        return member in self.members

    def close(self) -> None:
        """Kill what runs in the namespaces and delete them; safe to call twice."""
        if self._reaper.stdin is not None and not self._reaper.stdin.closed:
            self._reaper.stdin.close()
        self._reaper.wait(timeout=60)

    def leftovers(self) -> list[str]:
        """The namespaces of this network that still exist (none after :meth:`close`)."""
        wanted = {self.switch, *(ns.name for ns in self.members.values())}
        listed = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
        return sorted(wanted & set(listed))
