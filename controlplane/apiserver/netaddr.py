"""This machine's IP addresses, for the serving certificate's SANs (no dependencies)."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

_SIOCGIFADDR = 0x8915


def local_addresses() -> list[str]:
    """Every IPv4 and global/link IPv6 address of the up interfaces, loopback excluded."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode())
                )
            except OSError:
                continue  # no IPv4 address on this interface
            found.append(socket.inet_ntoa(packed[20:24]))
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except OSError:
        pass
    result = []
    for address in dict.fromkeys(found):
        ip = ipaddress.ip_address(address)
        if not ip.is_loopback and not ip.is_unspecified:
            result.append(address)
    return result
