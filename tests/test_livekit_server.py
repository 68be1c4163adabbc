"""Finding the LiveKit server binary, and saying how to get one when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetalk import livekit_server
from facetalk.errors import FaceTalkError


def test_missing_server_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no binary anywhere, the error names the install command."""
    monkeypatch.delenv("FACETALK_LIVEKIT_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(livekit_server, "REPO_BIN", tmp_path)
    with pytest.raises(FaceTalkError) as info:
        livekit_server.find_server()
    assert "livekit-server was not found" in str(info.value)
    assert "make setup" in info.value.hint
    assert f"@{livekit_server.LIVEKIT_SERVER_VERSION}" in info.value.hint


def test_env_override_must_point_at_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FACETALK_LIVEKIT_SERVER wins, and a wrong path is reported as such."""
    monkeypatch.setenv("FACETALK_LIVEKIT_SERVER", str(tmp_path / "nope"))
    with pytest.raises(FaceTalkError, match="does not exist"):
        livekit_server.find_server()
    binary = tmp_path / "livekit-server"
    binary.write_text("")
    monkeypatch.setenv("FACETALK_LIVEKIT_SERVER", str(binary))
    assert livekit_server.find_server() == binary


def test_tokens_are_scoped_to_one_room_and_identity() -> None:
    """A token grants joining exactly one room, as one identity."""
    from livekit import api

    jwt = livekit_server.make_token("alice", "room-a", ttl_s=60)
    claims = api.TokenVerifier("devkey", "secret").verify(jwt)
    assert claims.identity == "alice"
    assert claims.video.room == "room-a"
    assert claims.video.room_join
