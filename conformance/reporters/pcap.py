"""Pcap files of a case's flows, for Wireshark.

Scapy is imported inside :func:`write_pcap` so that the other reporters (and
everything offline) work without loading it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ..core.results import CaseResult
from .files import write_file

#: Ethernet (DLT_EN10MB): the runner captures whole frames.
LINKTYPE_ETHERNET = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def pcap_name(result: CaseResult) -> str:
    """The file name of a case's pcap: its id, made safe for a file system."""
    return (_UNSAFE.sub("_", result.case.id).strip("._") or "case") + ".pcap"


def _split_time(t: float) -> tuple[int, int]:
    """Seconds and nanoseconds of a timestamp, the carry handled."""
    sec = int(t // 1)
    ns = round((t - sec) * 1e9)
    if ns >= 1_000_000_000:
        sec, ns = sec + 1, ns - 1_000_000_000
    return sec, ns


def write_pcap(result: CaseResult, folder: Path) -> Path | None:
    """Write `result.frames` to ``folder/<case id>.pcap``; None when there are no frames.

    The file is a classic pcap with nanosecond timestamps (magic 0xa1b23c4d,
    read by Wireshark, tcpdump and libpcap >= 1.5) and Ethernet link type.
    Frames are written in capture-time order with the times they were captured at.
    The file is written whole or not at all, never through a symbolic link.
    """
    if not result.frames:
        return None
    from scapy.utils import PcapWriter

    path = Path(folder) / pcap_name(result)
    frames = sorted(result.frames, key=lambda f: f[0])
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, linktype=LINKTYPE_ETHERNET, nano=True, sync=False)
    writer.write_header(None)
    for t, frame in frames:
        sec, ns = _split_time(t)
        writer.write_packet(bytes(frame), sec=sec, usec=ns)
    writer.flush()
    write_file(path, buffer.getvalue())
    return path
