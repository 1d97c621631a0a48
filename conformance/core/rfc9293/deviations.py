"""The deviations: mutations of a profile, not stacks. Each breaks one documented behaviour (named in ``breaks``)
by turning knobs of :class:`~.profile.ModelProfile`, so that the suite's cases can be checked to catch it
(``scripts/mutation_score.py``, ``tests/test_rfc9293_reference.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .profile import ICMP_HARD, ICMP_SOFT, ModelProfile


@dataclass(frozen=True)
class Deviation:
    """A mutation of a profile: what it breaks, and the knobs it turns."""

    name: str
    breaks: str
    changes: tuple[tuple[str, object], ...]

    def apply(self, profile: ModelProfile) -> ModelProfile:
        return replace(profile, name=f"{profile.name}+{self.name}", **dict(self.changes))  # type: ignore[arg-type]


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "syn-to-broadcast-answered",
        "RFC 9293 §3.9.2.3, MUST-57: a SYN to a broadcast address is discarded",
        (("drop_syn_to_broadcast", False),),
    ),
    Deviation(
        "invalid-source-answered",
        "RFC 9293 §3.9.2.3, MUST-63: a SYN from an invalid source address is ignored",
        (("drop_invalid_source", False),),
    ),
    Deviation(
        "open-broadcast-accepted",
        "RFC 9293 §3.9.1.1, MUST-46: an OPEN to a broadcast address is an error",
        (("reject_open_to_broadcast", False),),
    ),
    Deviation("ttl-ignored", "RFC 9293 §3.9.2, MUST-49: the TTL is configurable", (("honour_ip_ttl", False),)),
    Deviation("tos-ignored", "RFC 9293 §3.9.1.9, MUST-48: the application sets DiffServ", (("honour_ip_tos", False),)),
    Deviation("tos-fixed", "RFC 9293 §3.9.1.9, SHLD-21: the DiffServ field can change", (("tos_changes", False),)),
    Deviation(
        "route-not-reversed", "RFC 9293 §3.9.2.1, MUST-53: the SYN's return route is used", (("reverse_route", False),)
    ),
    Deviation(
        "soft-error-aborts",
        "RFC 9293 §3.9.2.2, MUST-56: a soft ICMP error does not abort the connection",
        (("icmp_abort_synchronized", ICMP_HARD | ICMP_SOFT),),
    ),
    Deviation(
        "source-quench-aborts",
        "RFC 9293 §3.9.2.2, MUST-55: an ICMP Source Quench is silently discarded",
        (("discard_source_quench", False),),
    ),
    Deviation(
        "reply-from-primary",
        "RFC 9293 §3.9.1.1, MUST-45: a connection keeps the local address it was opened to",
        (("reply_from_arrival_address", False),),
    ),
    Deviation(
        "ip-id-per-datagram",
        "RFC 9293 §3.8.1, MAY-4 as Linux takes it: a retransmitted SYN-ACK keeps its IPv4 identification (0)",
        (("synack_ip_id_zero", False), ("retransmit_reuses_ip_id", False)),
    ),
    Deviation("no-rst-closed", "RFC 9293 §3.10.7.1: a RST for a closed port", (("rst_for_closed", False),)),
    Deviation("ack-plus-one", "RFC 9293 §3.4: ack = SEG.SEQ + SEG.LEN", (("ack_offset", 1),)),
    Deviation("constant-isn", "RFC 9293 §3.4.1 MUST-8, RFC 6528", (("constant_isn", 123456789),)),
    Deviation("no-retransmit", "RFC 9293 §3.10.8, MUST-19", (("retransmit", False),)),
    Deviation("backoff-1.5", "RFC 6298 §5.5: RTO <- RTO x 2", (("backoff", 1.5),)),
    Deviation("rto-initial-3s", "RFC 6298 §2.1: initial RTO 1 s", (("rto_initial", 3.0),)),
    Deviation("synack-retries-3", "Linux tcp_synack_retries 5", (("synack_retries", 3),)),
    Deviation("time-wait-1s", "RFC 9293 §3.4.2 / Linux TCP_TIMEWAIT_LEN", (("time_wait", 1.0),)),
    Deviation("no-challenge-ack", "RFC 5961 §3.2, §4 (RFC 9293 §3.10.7.4)", (("challenge_ack", False),)),
    Deviation("rfc793-rst", "RFC 5961 §3.2: RST not at RCV.NXT resets", (("rfc5961", False),)),
    Deviation("no-fin-ack", "RFC 9293 §3.10.7.4 eighth: ACK the FIN", (("ack_fin", False),)),
    Deviation("no-rst-listen", "RFC 9293 §3.10.7.2 second: ACK in LISTEN gets a RST", (("rst_in_listen", False),)),
    Deviation(
        "rst-ignored-synrcvd", "RFC 9293 §3.10.7.4 second: RST in SYN-RECEIVED", (("rst_in_syn_received", False),)
    ),
    Deviation("rto-min-1s", "Linux TCP_RTO_MIN 200 ms", (("rto_min", 1.0), ("granularity", 1.0))),
    Deviation(
        "no-rst-closed-flagless",
        "RFC 9293 §3.10.7.1, EP-6: a segment with no flags to a closed port gets a RST,ACK",
        (("rst_for_closed_flagless", False),),
    ),
    Deviation(
        "checksum-unchecked", "RFC 9293 §3.1, MUST-3: the receiver checks the checksum", (("check_checksum", False),)
    ),
    Deviation(
        "unknown-option-drops",
        "RFC 9293 §3.1, MUST-6: an option of unknown kind is ignored",
        (("ignore_unknown_options", False),),
    ),
    Deviation(
        "no-rst-bad-ack-synrcvd",
        "RFC 9293 §3.10.7.4 fifth, EP-10: an unacceptable ACK in SYN-RECEIVED gets <SEQ=SEG.ACK><CTL=RST>",
        (("rst_for_bad_ack_in_syn_received", False),),
    ),
    Deviation(
        "dup-syn-unanswered",
        "RFC 9293 §3.10.7.4 first, EP-7, EP-11: a duplicate SYN in SYN-RECEIVED is acknowledged",
        (("answer_dup_syn", False),),
    ),
    Deviation(
        "no-rst-bad-ack-synsent",
        "RFC 9293 §3.10.7.3 first, EP-17: an unacceptable ACK in SYN-SENT gets <SEQ=SEG.ACK><CTL=RST>",
        (("rst_for_bad_ack_in_syn_sent", False),),
    ),
    Deviation(
        "no-reassembly",
        "RFC 9293 §3.10.7.4 seventh, SHLD-31: out-of-order segments are queued",
        (("queue_out_of_order", False),),
    ),
    Deviation(
        "mss-default-1460",
        "RFC 9293 §3.7.1, MUST-15: send MSS 536 without an MSS option",
        (("default_send_mss", 1460),),
    ),
    Deviation(
        "peer-mss-ignored",
        "RFC 9293 §3.7.1, MUST-16: the peer's MSS bounds the segments",
        (("honour_peer_mss", False),),
    ),
    Deviation("mss-above-mms-r", "RFC 9293 §3.7.1, MUST-67: the MSS sent is at most MMS_R - 20", (("mss", 65500),)),
    Deviation("no-psh", "RFC 9293 §3.9.1.2, MUST-61: PSH on the last segment of a SEND", (("push_last", False),)),
    Deviation("window-signed", "RFC 9293 §3.1, MUST-1: the window field is unsigned", (("window_signed", True),)),
    Deviation(
        "unread-close-fin",
        "RFC 9293 §3.6.1, SHLD-3: close() with unread data sends a RST",
        (("rst_on_unread_close", False),),
    ),
    Deviation("no-mss-option", "RFC 9293 §3.7.1, SHLD-5: the MSS option in every SYN", (("mss_option_in_syn", False),)),
    Deviation(
        "mss-on-every-segment",
        "RFC 9293 §3.2, MUST-65: the MSS option only in SYN segments",
        (("mss_option_on_syn_only", False),),
    ),
    Deviation(
        "no-simultaneous-open", "RFC 9293 §3.5, MUST-10, EP-18: simultaneous open", (("simultaneous_open", False),)
    ),
    Deviation(
        "rst-with-data-ignored",
        "RFC 9293 §3.5.3, SHLD-2: a RST that carries data is accepted",
        (("rst_with_data_accepted", False),),
    ),
    Deviation(
        "fin-wait-2-forever",
        "Linux ip-sysctl.rst tcp_fin_timeout: an orphaned FIN-WAIT-2 is aborted after it",
        (("fin_wait_2_expires", False),),
    ),
    Deviation(
        "shrunk-window-times-out",
        "RFC 9293 §3.8.6, SHLD-17: no timeout for data beyond a shrunk window",
        (("shrunk_window_kept", False),),
    ),
    Deviation(
        "backlog-ignored",
        "Linux listen(2), sk_acceptq_is_full: the backlog bounds the queues",
        (("honour_backlog", False),),
    ),
    Deviation(
        "overflow-rst",
        "Linux ip-sysctl.rst tcp_abort_on_overflow (default 0): the final ACK to a full accept queue is dropped",
        (("abort_on_overflow", 1),),
    ),
    Deviation(
        "no-syncookies",
        "Linux ip-sysctl.rst tcp_syncookies=1: a SYN cookie when the SYN queue overflows",
        (("syncookies_override", 0),),
    ),
    Deviation(
        "syncookies-always",
        "Linux ip-sysctl.rst tcp_syncookies=0: no cookies, SYNs beyond the backlog dropped",
        (("syncookies_override", 2),),
    ),
    Deviation(
        "cookie-keeps-state",
        "RFC 4987 §3.6: a SYN answered by a cookie leaves no state",
        (("cookie_stateless", False),),
    ),
    Deviation(
        "urgent-not-sent",
        "RFC 9293 §3.10.2, MUST-30: a SEND with the urgent flag sets SND.UP",
        (("urgent_send", False),),
    ),
    Deviation(
        "urgent-pointer-last-octet",
        "RFC 9293 §3.8.5, MUST-62 (RFC 6093 §2): the urgent pointer is the octet after the urgent data",
        (("urgent_pointer_after", False),),
    ),
    Deviation(
        "urgent-last-segment-only",
        "RFC 9293 §3.8.5, MUST-31: urgent data of any length, URG on every segment before SND.UP",
        (("urgent_every_segment", False),),
    ),
    Deviation(
        "urgent-ignored", "RFC 9293 §3.10.7.4 sixth, MUST-30: the URG bit sets RCV.UP", (("urgent_receive", False),)
    ),
    Deviation(
        "urgent-ends-with-segment",
        "RFC 9293 §3.8.5, MUST-31: urgent data of any length, a pointer beyond the segment stands",
        (("urgent_any_length", False),),
    ),
    Deviation(
        "urgent-not-notified",
        "RFC 9293 §3.8.5, MUST-32: the application is told of urgent data",
        (("urgent_notify", False),),
    ),
    Deviation(
        "urgent-mark-unknown",
        "RFC 9293 §3.8.5, MUST-33: the application learns whether urgent data remains",
        (("urgent_at_mark", False),),
    ),
    Deviation("no-ecn", "RFC 9293 §3.8.2, SHLD-8: an ECN-setup SYN-ACK answers an ECN-setup SYN", (("ecn", False),)),
    Deviation("window-16-bit", "RFC 9293 §3.1, REC-1: scaled windows computed in 32 bits", (("window_16_bit", True),)),
    Deviation(
        "no-timestamp-reopen",
        "RFC 9293 §3.6.1, SHLD-4, RFC 6191: a SYN with a newer timestamp reopens from TIME-WAIT",
        (("rfc6191", False),),
    ),
    Deviation("no-nagle", "RFC 9293 §3.7.4, SHLD-7: the Nagle algorithm", (("nagle", False),)),
    Deviation(
        "no-half-close", "POSIX shutdown(): SHUT_WR disables sending only (RFC 9293 §3.6)", (("half_close", False),)
    ),
    Deviation(
        "no-delayed-ack",
        "RFC 9293 §3.8.6.3, SHLD-18: fewer ACKs than segments",
        (("ack_delay", None), ("quickacks", 0)),
    ),
    Deviation("ack-delay-600ms", "RFC 9293 §3.8.6.3, MUST-40: an ACK delayed less than 0.5 s", (("ack_delay", 0.6),)),
    Deviation(
        "no-receiver-sws",
        "RFC 9293 §3.8.6.2.2, MUST-39: the receiver advances its right window edge by min(RCV.BUFF/2, Eff.snd.MSS)",
        (("receiver_sws", False),),
    ),
)
