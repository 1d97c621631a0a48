"""A run's matrix is predicted by the model profile that matches the run's profile: linux or the RFC."""

from __future__ import annotations

import pytest

from conformance.run.suite import find_matrix_case, matrix_model


@pytest.mark.parametrize(
    ("profile", "target", "model"),
    [
        (None, None, "linux"),
        (None, "embedded", "linux"),
        (None, "netns:lab", "linux"),
        (None, "docker:web", "linux"),
        (None, "198.18.2.2:80", "rfc"),
        (None, "link:tap1:198.18.3.2", "rfc"),
        ("rfc", "embedded", "rfc"),
        ("linux", "198.18.2.2:80", "linux"),
        ("pytcp", "link:tap1:198.18.3.2", "rfc"),
    ],
)
def test_the_model_follows_the_runs_profile(profile: str | None, target: str | None, model: str) -> None:
    assert matrix_model(profile, target) == model


def test_a_linux_departure_is_expected_under_linux_and_not_under_the_rfc() -> None:
    """TIME-WAIT and a SYN beyond RCV.NXT: Linux opens a new connection (tcp_timewait_state_process, TCP_TW_SYN);
    RFC 9293 §3.10.7.4 fourth answers it with an ACK (a challenge ACK under RFC 5961)."""
    linux = find_matrix_case("matrix/time-wait/syn/seq-beyond", "linux")
    rfc = find_matrix_case("matrix/time-wait/syn/seq-beyond", "rfc")
    assert linux is not None and rfc is not None
    linux_refs = {r.id for r in linux.refs}
    rfc_refs = {r.id for r in rfc.refs}
    assert "linux/tw-syn" in linux_refs and "linux/tw-syn" not in rfc_refs
