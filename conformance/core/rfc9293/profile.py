"""Where documents and stacks differ: the knobs of the model, and two profiles.

:class:`ModelProfile` holds every choice the model makes that RFC 9293 leaves open or that a stack makes
otherwise, each with the document that says so. :data:`RFC` follows the RFCs' recommendations; :data:`LINUX`
follows Linux 6.18's defaults (``linux-6.18-observations.md``). The mutations that break one documented behaviour
each are in :mod:`.deviations`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: RFC 9293 §3.9.2.2: the ICMP errors (type, code) that are hard (destination unreachable 2-4) and soft
#: (destination unreachable 0, 1, 5; time exceeded; parameter problem). See :mod:`.ip`.
ICMP_HARD = frozenset({(3, 2), (3, 3), (3, 4)})
ICMP_SOFT = frozenset({(3, 0), (3, 1), (3, 5), (11, 0), (11, 1), (12, 0)})


@dataclass(frozen=True)
class ModelProfile:
    """The knobs of the model. Times in seconds."""

    name: str
    #: The stack whose documented defaults (a reference of level ``default``) this profile follows, as in the
    #: stack profiles of ``conformance/data/profiles`` (None: none, as ``rfc``); see reference.policy_for.
    stack: str | None = None
    #: RFC 5961 §3-4 (RFC 9293 §3.10.7.4 second and fourth): challenge ACKs for RSTs not at RCV.NXT and SYNs.
    rfc5961: bool = True
    #: RFC 5961 §5 (MAY-12): the ACK range check in synchronized states.
    rfc5961_ack_check: bool = True
    #: RFC 1337 §3 F1: ignore RSTs in TIME-WAIT (Linux tcp_rfc1337=0: no).
    rfc1337: bool = False
    #: RFC 6298 §2.1: the initial RTO (1 s).
    rto_initial: float = 1.0
    #: RFC 6298 §2.4: RTO floor (1 s; Linux TCP_RTO_MIN 200 ms).
    rto_min: float = 1.0
    #: RFC 6298 §2.5: RTO ceiling (at least 60 s; Linux TCP_RTO_MAX 120 s).
    rto_max: float = 60.0
    #: RFC 6298 §5.7: the RTO when data transfer starts after a retransmitted SYN or SYN-ACK.
    rto_fallback: float = 3.0
    #: RFC 6298 §2.2: the clock granularity G (Linux: rto_min bounds the variance term instead).
    granularity: float = 0.001
    #: RFC 6298 §5.5: RTO <- RTO x backoff on each expiry.
    backoff: float = 2.0
    #: Retransmissions of a SYN-ACK before the request is dropped (Linux tcp_synack_retries 5).
    synack_retries: int = 5
    #: Retransmissions of a SYN (Linux tcp_syn_retries 6), and how many of the first are not backed off
    #: (Linux tcp_syn_linear_timeouts 4; the RFCs: 0).
    syn_retries: int = 6
    syn_linear: int = 0
    #: Retransmissions of data before giving up (R2, RFC 9293 §3.8.3; Linux tcp_retries2 15).
    data_retries: int = 15
    #: R2 measured in time, not counted (§3.8.3 allows either; Linux retransmits_timed_out: the time data_retries
    #: backoffs from rto_min take, :mod:`.timeouts`).
    r2_as_time: bool = False
    #: Retransmissions to a window shrunk to zero are probes R2 does not count (§3.8.6 SHLD-17; Linux
    #: tcp_retransmit_timer, "we should not timeout this connection"; :mod:`.timeouts`).
    shrunk_window_kept: bool = True
    #: R2 of an orphan (after close()), in place of data_retries (None: R2 applies). Linux tcp_write_timeout uses
    #: tcp_orphan_retries for a SOCK_DEAD socket, and its 0 means 8 while the RTO is below TCP_RTO_MAX
    #: (net/ipv4/tcp_timer.c tcp_orphan_retries: "8 corresponds to >100 seconds with minimal RTO"). :mod:`.timeouts`.
    orphan_retries: int | None = None
    #: An orphaned FIN-WAIT-2 is deleted, silently, after this (Linux tcp_fin_timeout 60 s, net/ipv4/tcp.c
    #: tcp_close, tcp_fin_time; RFC 9293 has no such timer: None).
    fin_timeout: float | None = None
    #: A listen backlog's queues are full beyond this many more than the backlog (Linux sk_acceptq_is_full and
    #: inet_csk_reqsk_queue_is_full: ``>``, one more; POSIX listen(): the backlog itself, 0). :mod:`.queues`.
    backlog_extra: int = 0
    #: SYN cookies (RFC 4987 §3.6; Linux tcp_syncookies 1: when the SYN queue overflows, 2: always, 0: never).
    syncookies: int = 0
    #: The final ACK that finds the accept queue full gets a RST (Linux tcp_abort_on_overflow 0: dropped).
    abort_on_overflow: int = 0
    #: RFC 9293 §3.10.8 USER TIMEOUT, None: none (Linux: none by default).
    user_timeout: float | None = None
    #: TIME-WAIT length, 2 MSL (RFC 9293 §3.4.2: MSL 2 min, 240 s; Linux TCP_TIMEWAIT_LEN 60 s).
    time_wait: float = 240.0
    #: TIME-WAIT restarted by any ACK, not only by a FIN (Linux).
    time_wait_restart_on_ack: bool = False
    #: SEND data carried on a SYN is accepted and acknowledged (RFC 9293 §3.10.7.2 "queued"; Linux without TFO: no).
    syn_data_accepted: bool = True
    #: A SYN+FIN to a listener is dropped (Linux) rather than answered.
    synfin_dropped: bool = False
    #: SYN-RECEIVED: a duplicate of the SYN gets the SYN-ACK again (Linux, EP-11) rather than an ACK.
    dup_syn_resends_synack: bool = False
    #: A segment with none of ACK, RST, SYN is dropped before the sequence check in the synchronized states (Linux
    #: net/ipv4/tcp_input.c: tcp_rcv_established and tcp_rcv_state_process, "!th->ack && !th->rst && !th->syn").
    flagless_dropped: bool = False
    #: Text that ends beyond RCV.NXT+RCV.WND is not acceptable even when it starts inside, while the receive queue
    #: holds data the application has not read ("Only accept this packet if receive queue is empty": Linux 6.18
    #: net/ipv4/tcp_input.c tcp_sequence, SKB_DROP_REASON_TCP_INVALID_END_SEQUENCE; Table 6 accepts it).
    end_beyond_window_unacceptable: bool = False
    #: FIN-WAIT-2 after the application's close() and TIME-WAIT are a "timewait sock" that repeats only some checks
    #: of SEGMENT ARRIVES (Linux net/ipv4/tcp_minisocks.c tcp_timewait_state_process; tcp_input.c
    #: tcp_rcv_state_process moves an orphaned FIN-WAIT-1 socket there with tcp_time_wait(sk, TCP_FIN_WAIT2, ...)):
    #: an in-window RST removes it without a challenge ACK, no ACK range check, new data gets a RST, and TIME-WAIT
    #: ACKs anything but a bare ACK or RST at RCV.NXT.
    timewait_socks: bool = False
    #: TIME-WAIT: a SYN beyond RCV.NXT opens a new connection with ISS = SND.NXT + 65537 (RFC 9293 §3.6.1 MAY-2,
    #: RFC 1122 §4.2.2.13; Linux tcp_timewait_state_process TCP_TW_SYN, handed to the listener by tcp_v4_rcv).
    time_wait_reopen: bool = False
    #: SYN-RECEIVED of a passive OPEN is a request sock: an ACK other than ISS+1 is answered before the sequence
    #: check, by the listener, with <SEQ=SEG.ACK><CTL=RST>, the request kept (Linux net/ipv4/tcp_minisocks.c
    #: tcp_check_req, "Invalid ACK: reset will be sent by listening socket").
    synrcvd_ack_first: bool = False
    #: SYN-RECEIVED of a passive OPEN, a SYN in the window: a RST, the request dropped (Linux tcp_check_req,
    #: embryonic_reset; RFC 9293 §3.10.7.4 fourth: back to LISTEN, no reply).
    synrcvd_syn_resets: bool = False
    #: New data after the application's CLOSE is answered by a RST (RFC 9293 §3.6.1 and RFC 1122 §4.2.2.13,
    #: SHOULD; Linux tcp_rcv_state_process, LINUX_MIB_TCPABORTONDATA: <SEQ=SEG.ACK><CTL=RST>, CLOSED).
    rst_on_data_after_close: bool = True
    #: RFC 7323 §2.2: the window scale shift a SYN-ACK offers to a SYN that offers one (None: no option; scaling is
    #: optional. Linux: 7, from tcp_rmem's 6 MB maximum, net/ipv4/tcp_output.c tcp_select_initial_window).
    window_scale: int | None = None
    #: RFC 7323 §3.2: timestamps in the SYN-ACK to a SYN that offers them, then on every segment but a RST
    #: (Linux tcp_timestamps=1). RFC 6191 §2 (SHLD-4): a SYN in TIME-WAIT with a newer timestamp opens a new
    #: connection (Linux tcp_timewait_state_process: "after rcv_nxt, or with a TSval newer than tw_ts_recent").
    timestamps: bool = True
    rfc6191: bool = True
    #: RFC 3168 §6.1.1 (SHLD-8): an ECN-setup SYN gets an ECN-setup SYN-ACK (Linux tcp_ecn=2: when asked).
    ecn: bool = True
    #: RFC 9293 §3.8.6.3 delayed ACK (SHLD-18): how long an ACK of in-order text may wait (None: every segment is
    #: acknowledged at once, which any delay policy within MUST-40's 0.5 s is compatible with; Linux: TCP_ATO_MIN
    #: 40 ms, observations E5), and Linux's quick-ack mode: this many ACKs at once after the first data, or after
    #: a gap longer than the RTO (TCP_MAX_QUICKACKS 16, net/ipv4/tcp_input.c tcp_event_data_recv).
    ack_delay: float | None = None
    quickacks: int = 0
    #: RFC 9293 §3.7.4 (SHLD-7): the Nagle algorithm, on unless TCP_NODELAY. Linux's (net/ipv4/tcp_output.c): a
    #: small segment is held only while a small one is unacknowledged (Minshall's variant, tcp_minshall_check), never
    #: urgent data or data the FIN follows (tcp_nagle_test; tcp_send_fin pushes with TCP_NAGLE_OFF), and setting
    #: TCP_NODELAY sends what was held (net/ipv4/tcp.c __tcp_sock_set_nodelay -> tcp_push_pending_frames).
    nagle: bool = True
    nagle_linux: bool = False
    #: RFC 9293 §3.8.6.2.2 (MUST-39): the receiver's SWS avoidance, the right window edge kept until it can advance
    #: by min(RCV.BUFF / 2, Eff.snd.MSS) (:mod:`.receiver`; Linux net/ipv4/tcp_output.c __tcp_select_window).
    receiver_sws: bool = True
    #: A read that opens the window sends a window update at once (Linux net/ipv4/tcp.c tcp_cleanup_rbuf,
    #: :mod:`.window_update`); the RFC leaves the update to the delayed ACK and the sender's probes (§3.8.6.2.2).
    window_update_on_read: bool = False
    #: The last urgent octet is the mark and is read apart (one octet, MSG_OOB) unless SO_OOBINLINE, the BSD way (Linux
    #: net/ipv4/tcp.c tcp_recvmsg_locked, tcp_recv_urg; tcp_input.c tcp_urg); RFC 9293 §3.8.5 marks a point in the
    #: stream: the urgent data stays in line, the mark after it (RFC 6093). See :mod:`.urgent`.
    urgent_oob: bool = False
    #: SHOULDs the stack does not follow, by requirement id, with the source that says so: a case that checks one
    #: warns against the stack and against the model under this profile, as a run does (reference.policy_for).
    should_departures: tuple[tuple[str, str], ...] = ()
    #: Minimum gap between replies to invalid segments on a connection (Linux tcp_invalid_ratelimit 0.5 s).
    invalid_ratelimit: float = 0.0
    #: The receive window offered (RCV.WND), the MSS offered in SYN-ACKs.
    rcv_wnd: int = 65535
    mss: int = 1460
    #: The secret of the ISN function (RFC 6528: ISN = M + F(4-tuple, secret)), and the clock M's tick.
    isn_secret: bytes = b"rfc9293-model"
    isn_tick: float = 4e-6
    # ---------------------------------------------------------------- the IP layer (:mod:`.ip`)
    #: RFC 1122 §3.2.1.8: a host can be the final destination of a source route; Linux drops source-routed
    #: datagrams unless net.ipv4.conf.*.accept_source_route is 1 (ip-sysctl.rst: FALSE on a host; RFC 7126 §4.3).
    accept_source_route: bool = True
    #: §3.9.2.1 SHLD-24: a later source route overrides the SYN's (Linux keeps the SYN's: net/ipv4/tcp_ipv4.c
    #: tcp_v4_syn_recv_sock copies the request's ireq_opt once).
    later_route_overrides: bool = True
    #: §3.9.2.2: the ICMP errors that abort a connection in a passive SYN-RECEIVED (Linux: a request sock,
    #: tcp_req_err: net or host unreachable, time exceeded, parameter problem), in SYN-SENT (Linux tcp_v4_err: any
    #: but fragmentation needed, RFC 5461 §4) and synchronized (Linux: none without IP_RECVERR, tcp_v4_err sets
    #: sk_err_soft). The RFC: the hard errors (SHLD-26), never the soft ones (MUST-56).
    icmp_abort_request: frozenset[tuple[int, int]] = ICMP_HARD
    icmp_abort_syn_sent: frozenset[tuple[int, int]] = ICMP_HARD
    icmp_abort_synchronized: frozenset[tuple[int, int]] = ICMP_HARD
    #: A SYN-ACK's IPv4 identification is 0 (Linux ip_build_and_send_pkt, DF set); a retransmission reuses its
    #: original's (§3.8.1 MAY-4; Linux: the next inet_id, ip_select_ident_segs, so False).
    synack_ip_id_zero: bool = False
    retransmit_reuses_ip_id: bool = True
    #: True in both profiles, False only in deviations: a SYN to a broadcast address is discarded (§3.9.2.3
    #: MUST-57), so is one from an invalid source (MUST-63; Linux: ip_route_input_slow's martian source for 0.0.0.0,
    #: fib_validate_source for the subnet's broadcast under rp_filter 2, which the embedded target runs with),
    #: an OPEN to a broadcast address fails (§3.9.1.1 MUST-46), IP_TTL and IP_TOS set the fields (MUST-49, MUST-48)
    #: also mid-connection (SHLD-21), the return route is used (MUST-53), a Source Quench is discarded (MUST-55),
    #: and a connection answers from the address it was opened to (§3.9.1.1 MUST-45).
    drop_syn_to_broadcast: bool = True
    drop_invalid_source: bool = True
    reject_open_to_broadcast: bool = True
    honour_ip_ttl: bool = True
    honour_ip_tos: bool = True
    tos_changes: bool = True
    reverse_route: bool = True
    discard_source_quench: bool = True
    reply_from_arrival_address: bool = True
    # ---------------------------------------------------------------- deviations (mutations, not stacks)
    #: The orphaned FIN-WAIT-2's timer runs when the profile has one (fin_timeout); False: never, whatever the sysctl.
    fin_wait_2_expires: bool = True
    #: The listen backlog bounds the queues (:mod:`.queues`); False: it is ignored.
    honour_backlog: bool = True
    #: tcp_syncookies as this value whatever the sysctl (None: the profile's).
    syncookies_override: int | None = None
    #: A SYN answered by a cookie leaves no state (RFC 4987 §3.6); False: a request is kept as well.
    cookie_stateless: bool = True
    #: Answer segments to a closed port with a RST (§3.10.7.1); False: no RST for a closed port.
    rst_for_closed: bool = True
    #: Added to every acknowledgment number we compute from SEG.SEQ+SEG.LEN (1: "ack = seq + len + 1").
    ack_offset: int = 0
    #: Use this ISN for every connection (None: RFC 6528).
    constant_isn: int | None = None
    #: Retransmit on RTO expiry (§3.10.8); False: never.
    retransmit: bool = True
    #: Send challenge ACKs when RFC 5961 says so; False: the check is made but the ACK is not sent.
    challenge_ack: bool = True
    #: Acknowledge a FIN (§3.10.7.4 eighth); False: the FIN is taken silently.
    ack_fin: bool = True
    #: Answer an ACK-bearing segment in LISTEN with a RST (§3.10.7.2 second); False: drop it.
    rst_in_listen: bool = True
    #: RST in SYN-RECEIVED at RCV.NXT drops the request (§3.10.7.4 second); False: ignored.
    rst_in_syn_received: bool = True
    #: A segment with none of the flags to a closed port gets a RST,ACK like any other (§3.10.7.1, EP-6); False: none.
    rst_for_closed_flagless: bool = True
    #: Drop a segment whose checksum is wrong (§3.1, MUST-3); False: take it as if it were right.
    check_checksum: bool = True
    #: Ignore an option of unknown kind, and one with a bad length (§3.1, MUST-6, MUST-7); False: drop the segment.
    ignore_unknown_options: bool = True
    #: SYN-RECEIVED, an unacceptable ACK: <SEQ=SEG.ACK><CTL=RST> (§3.10.7.4 fifth, EP-10); False: dropped silently.
    rst_for_bad_ack_in_syn_received: bool = True
    #: SYN-RECEIVED, the SYN again: acknowledged (§3.10.7.4 first, EP-7; EP-11 the SYN-ACK); False: no reply.
    answer_dup_syn: bool = True
    #: SYN-SENT, an ACK outside (ISS, SND.NXT]: <SEQ=SEG.ACK><CTL=RST> (§3.10.7.3 first, EP-17); False: dropped.
    rst_for_bad_ack_in_syn_sent: bool = True
    #: Out-of-order text is queued until the gap is filled (§3.10.7.4 seventh, SHLD-31); False: dropped (and ACKed).
    queue_out_of_order: bool = True
    #: The send MSS when the peer's SYN has no MSS option (§3.7.1, MUST-15: 536 for IPv4).
    default_send_mss: int = 536
    #: The peer's MSS option bounds the segments sent (§3.7.1, MUST-16); False: it is ignored.
    honour_peer_mss: bool = True
    #: The last segment of a SEND carries PSH (§3.9.1.2, MUST-61); False: never.
    push_last: bool = True
    #: The window field read as a signed 16-bit number (§3.1, MUST-1 says unsigned): above 32767 it is negative.
    window_signed: bool = False
    #: close() with received data the application never read sends a RST (§3.6.1 SHLD-3, RFC 2525 §2.17); False: FIN.
    rst_on_unread_close: bool = True
    #: The MSS option in every SYN (§3.7.1, SHLD-5), and only there (§3.2, MUST-65); False: never, on every segment.
    mss_option_in_syn: bool = True
    mss_option_on_syn_only: bool = True
    #: SYN-SENT, a SYN without ACK: SYN-RECEIVED and a SYN,ACK, the simultaneous open (§3.5, MUST-10); False: dropped.
    simultaneous_open: bool = True
    #: A RST that carries data is processed like any RST (§3.5.3, SHLD-2); False: dropped.
    rst_with_data_accepted: bool = True
    #: CLOSE is simplex: after shutdown(SHUT_WR) the application still receives (RFC 9293 §3.6's design; POSIX
    #: shutdown(): SHUT_WR "disables further send operations"); False: the receive side is shut too, data gets a RST.
    half_close: bool = True
    #: The urgent mechanism (§3.8.5, :mod:`.urgent`): a SEND's urgent flag sets SND.UP (MUST-30); the urgent pointer is
    #: the octet after the urgent data, sent and read (MUST-62, RFC 6093 §2; Linux tcp_stdurg=0; False: the last
    #: urgent octet, RFC 1122 §4.2.2.4's reading); every segment before SND.UP carries URG (MUST-31; False: only the
    #: one where the urgent data ends); the sixth check takes the URG bit (MUST-30); a pointer beyond the segment's
    #: text stands (MUST-31; False: the urgent data ends with the segment); poll reports urgent data (MUST-32);
    #: sockatmark reports the mark (MUST-33).
    urgent_send: bool = True
    urgent_pointer_after: bool = True
    urgent_every_segment: bool = True
    urgent_receive: bool = True
    urgent_any_length: bool = True
    urgent_notify: bool = True
    urgent_at_mark: bool = True
    #: The send window kept in 16 bits (§3.1 REC-1 recommends 32 bits with window scaling); True: truncated.
    window_16_bit: bool = False


#: The RFCs' recommendations (RFC 9293, RFC 5961 on, RFC 6298 timers, MSL 2 min).
RFC = ModelProfile(name="rfc")

#: Linux 6.18 defaults (include/net/tcp.h, ip-sysctl.rst, and linux-6.18-observations.md).
LINUX = replace(
    RFC,
    name="linux",
    stack="linux",  # conformance/data/profiles/linux.yaml
    accept_source_route=False,  # net.ipv4.conf.*.accept_source_route 0 (ip-sysctl.rst)
    later_route_overrides=False,  # tcp_v4_syn_recv_sock: the SYN's ireq_opt, kept
    icmp_abort_request=frozenset({(3, 0), (3, 1), (11, 0), (11, 1), (12, 0)}),  # tcp_v4_err -> tcp_req_err
    icmp_abort_syn_sent=(ICMP_HARD - {(3, 4)}) | ICMP_SOFT,  # tcp_v4_err: tcp_done_with_error
    icmp_abort_synchronized=frozenset(),  # tcp_v4_err: sk_err_soft unless inet->recverr
    synack_ip_id_zero=True,  # ip_build_and_send_pkt
    retransmit_reuses_ip_id=False,  # __tcp_retransmit_skb -> ip_queue_xmit -> ip_select_ident_segs
    rto_min=0.2,  # TCP_RTO_MIN
    rto_max=120.0,  # TCP_RTO_MAX
    granularity=0.2,  # the variance term is floored at rto_min (tcp_rtt_estimator)
    syn_linear=4,  # tcp_syn_linear_timeouts
    r2_as_time=True,  # net/ipv4/tcp_timer.c retransmits_timed_out, tcp_model_timeout
    orphan_retries=0,  # tcp_orphan_retries (ip-sysctl.rst: default 8; the sysctl's 0, tcp_timer.c: 8 while alive)
    fin_timeout=60.0,  # tcp_fin_timeout
    backlog_extra=1,  # include/net/sock.h sk_acceptq_is_full, inet_connection_sock.h inet_csk_reqsk_queue_is_full
    syncookies=1,  # tcp_syncookies (observations: tcp_syncookies=1)
    time_wait=60.0,  # TCP_TIMEWAIT_LEN
    time_wait_restart_on_ack=True,  # observations E6
    syn_data_accepted=False,  # tcp_fastopen=1: server side off (observations E7f)
    synfin_dropped=True,  # observations E7e
    dup_syn_resends_synack=True,  # observations E7d
    invalid_ratelimit=0.5,  # tcp_invalid_ratelimit
    flagless_dropped=True,  # tcp_rcv_established / tcp_rcv_state_process
    end_beyond_window_unacceptable=True,  # tcp_sequence
    timewait_socks=True,  # tcp_timewait_state_process
    time_wait_reopen=True,  # tcp_timewait_state_process, TCP_TW_SYN
    synrcvd_ack_first=True,  # tcp_check_req
    synrcvd_syn_resets=True,  # tcp_check_req, embryonic_reset
    urgent_oob=True,  # tcp_recvmsg_locked, tcp_recv_urg; SO_OOBINLINE off by default
    rcv_wnd=65535,
    window_scale=7,  # tcp_select_initial_window with tcp_rmem[2] 6 MB
    should_departures=(
        ("SHLD-26", "net/ipv4/tcp_ipv4.c tcp_v4_err, tcp_req_err: a hard ICMP error does not abort the connection"),
        ("SHLD-24", "net/ipv4/tcp_ipv4.c tcp_v4_syn_recv_sock: the SYN's source route is kept, a later one ignored"),
    ),
    ack_delay=0.04,  # TCP_ATO_MIN, the delayed-ACK timer's first value
    quickacks=16,  # TCP_MAX_QUICKACKS
    nagle_linux=True,  # tcp_minshall_check, tcp_nagle_test, __tcp_sock_set_nodelay
    window_update_on_read=True,  # tcp_cleanup_rbuf
)
