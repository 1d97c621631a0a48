"""The sender's window rules: when queued data may be sent (RFC 9293 §3.8.6.2.1) and the persist timer (§3.8.6.1).

Data a SEND queued (:attr:`~.tcb.Tcb.pending`) is sent by :meth:`~.host.Host._output` in pieces :func:`chunk`
allows: the sender's SWS avoidance of §3.8.6.2.1 (MUST-38), with U = SND.UNA + SND.WND - SND.NXT the usable
window and D the data queued, "send data:

(1) if a maximum-sized segment can be sent, i.e., if: min(D,U) >= Eff.snd.MSS;
(2) or if the data is pushed and all queued data can be sent now, i.e., if: [SND.NXT = SND.UNA and] PUSHed and
    D <= U (the bracketed condition is imposed by the Nagle algorithm);
(3) or if at least a fraction Fs of the maximum window can be sent, i.e., if: [SND.NXT = SND.UNA and]
    min(D,U) >= Fs * Max(SND.WND);
(4) or if the override timeout occurs."

Fs is 1/2, as recommended. The sockets API has no PUSH flag, so every SEND is pushed (§3.9.1.2, MUST-60/61). The
bracketed conditions are the Nagle algorithm (§3.7.4, SHLD-7: "no new small segment while data sent is
unacknowledged"), on unless the application set TCP_NODELAY (MUST-17) or the profile has none (:func:`nagle_holds`).
Linux uses Minshall's variant (``tcp_nagle_check`` -> ``tcp_minshall_check``): a small segment is held only while a
small segment sent earlier (ending at ``snd_sml``) is unacknowledged, so a SEND's last partial segment goes out
behind full-sized ones; and it never holds urgent data or the data a CLOSE's FIN follows (``tcp_nagle_test``).

"It may be convenient to combine this timer [the override] with the timer used to probe zero windows": the model
does so, as Linux does (the probe timer ``ICSK_TIME_PROBE0``, net/ipv4/tcp_output.c ``tcp_send_probe0``). The
**persist timer** runs while data is queued, nothing is in flight (so the retransmission timer is off) and
:func:`chunk` allows nothing. It is first set one RTO ahead (SHLD-29: "when a zero window has existed for the
retransmission timeout period"). When it expires (:func:`expire`):

- with a usable window, the override (4): as much queued data as the window takes, up to one segment;
- with none, a zero-window probe (§3.8.6.1, MUST-36), after which the interval doubles (SHLD-30; RFC 6298 §5.5),
  up to the RTO ceiling. The probe has Linux's form (``tcp_write_wakeup`` -> ``tcp_xmit_probe_skb``): an ACK at
  SND.UNA-1 without data, which the receiver must answer with its window (§3.10.7.4 first: not acceptable, ACKed).

An ACK that leaves the window closed restarts the timer with the current interval, and an ACK resets the count of
unanswered probes (Linux ``tcp_ack``: ``icsk_probes_out = 0``; ``tcp_ack_probe``), so the connection stays open as
long as the probes are answered (MUST-37); R2 unanswered probes in a row (the profile's ``data_retries``,
Linux ``tcp_probe_timer`` against ``tcp_retries2``) end it.
"""

from __future__ import annotations

from ..segment import seq_add, seq_diff
from .tcb import Tcb
from .urgent import urgent_mode

#: §3.8.6.2.1: "Fs is a fraction whose recommended value is 1/2".
FS = 0.5


def usable(tcb: Tcb) -> int:
    """U = SND.UNA + SND.WND - SND.NXT (negative when the window shrank under data in flight, §3.8.6)."""
    return tcb.snd_wnd - seq_diff(tcb.snd_nxt, tcb.snd_una)


def chunk(tcb: Tcb) -> int:
    """How many queued octets may go out now in one segment (0: hold them), by §3.8.6.2.1 (1)-(3)."""
    d, u = len(tcb.pending), usable(tcb)
    size = min(d, u, tcb.send_mss)
    if size <= 0:
        return 0
    if min(d, u) >= tcb.send_mss:  # (1)
        return _small(tcb, size)
    if nagle_holds(tcb):
        return 0
    if d <= u:  # (2): every SEND is pushed
        return _small(tcb, size)
    if min(d, u) >= FS * tcb.max_snd_wnd:  # (3)
        return _small(tcb, size)
    return 0


def nagle_holds(tcb: Tcb) -> bool:
    """The bracketed conditions of (2) and (3): does the Nagle algorithm hold a small segment now?"""
    p = tcb.profile
    if not p.nagle or tcb.nodelay or tcb.snd_nxt == tcb.snd_una:
        return False
    if not p.nagle_linux:
        return True
    if urgent_mode(tcb) or tcb.close_pending:  # tcp_nagle_test: not "for urgent data (or for the final FIN)"
        return False
    return seq_diff(tcb.snd_sml, tcb.snd_una) > 0 and seq_diff(tcb.snd_sml, tcb.snd_nxt) <= 0  # Minshall


def _small(tcb: Tcb, size: int) -> int:
    """`size` octets go out now: remember the end of a small segment (Linux ``tcp_minshall_update``)."""
    if size < tcb.send_mss:
        tcb.snd_sml = seq_add(tcb.snd_nxt, size)
    return size


def interval(tcb: Tcb) -> float:
    """The persist timer's interval: the RTO, doubled for each probe sent (SHLD-30), at most the RTO ceiling."""
    return min(tcb.timer.rto * (1 << tcb.persist_backoff), tcb.profile.rto_max)


def settle(tcb: Tcb, now: float) -> None:
    """After the sender has sent what it may: the persist timer runs while data is held and nothing is in flight."""
    if not tcb.pending or tcb.queue:
        tcb.persist_deadline = None
        tcb.persist_backoff = tcb.probes_out = 0
    elif tcb.persist_deadline is None:
        tcb.persist_deadline = now + interval(tcb)


def acknowledged(tcb: Tcb, now: float) -> None:
    """An ACK arrived while the persist timer runs: the probes are answered (MUST-37); the timer restarts from now
    with the current interval (Linux ``tcp_ack_probe``)."""
    tcb.probes_out = 0
    if tcb.persist_deadline is not None:
        tcb.persist_deadline = now + interval(tcb)


def expire(tcb: Tcb, now: float) -> int | None:
    """The persist timer expired: the octets of the override to send (> 0), 0 for a zero-window probe, None when
    R2 probes went unanswered and the connection must be given up."""
    room = min(len(tcb.pending), usable(tcb), tcb.send_mss)
    if room > 0:
        tcb.persist_deadline = None
        tcb.persist_backoff = tcb.probes_out = 0
        return room
    if tcb.probes_out >= tcb.profile.data_retries:
        return None
    tcb.probes_out += 1
    tcb.persist_backoff += 1
    tcb.persist_deadline = now + interval(tcb)
    return 0


def probe_seq(tcb: Tcb) -> int:
    """The zero-window probe's sequence number: SND.UNA-1, already acknowledged (Linux ``tcp_xmit_probe_skb``)."""
    return seq_add(tcb.snd_una, -1)
