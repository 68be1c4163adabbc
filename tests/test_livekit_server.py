"""Finding the LiveKit server binary, and saying how to get one when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetalk import livekit_server
from facetalk.errors import FaceTalkError


def test_missing_server_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no binary anywhere, the error names the three ways to get one: PATH, the variable, a cached build."""
    monkeypatch.delenv("FACETALK_LIVEKIT_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("FACETALK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FaceTalkError) as info:
        livekit_server.find_server()
    assert "livekit-server was not found" in str(info.value)
    assert "make setup" in info.value.hint
    assert f"@{livekit_server.LIVEKIT_SERVER_VERSION}" in info.value.hint
    assert "PATH" in info.value.hint
    assert "FACETALK_LIVEKIT_SERVER" in info.value.hint
    assert "facetalk server build" in info.value.hint
    assert str(tmp_path / "cache" / "bin") in info.value.hint


def test_a_build_in_the_user_cache_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without PATH or the variable, the binary built into <XDG_CACHE_HOME>/facetalk/bin is used."""
    monkeypatch.delenv("FACETALK_LIVEKIT_SERVER", raising=False)
    monkeypatch.delenv("FACETALK_CACHE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    binary = tmp_path / "xdg" / "facetalk" / "bin" / "livekit-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    assert livekit_server.server_cache_dir() == binary.parent
    assert livekit_server.find_server() == binary


def test_path_wins_over_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A livekit-server the user put on PATH is preferred to FaceTalk's own cached build."""
    monkeypatch.delenv("FACETALK_LIVEKIT_SERVER", raising=False)
    monkeypatch.setenv("FACETALK_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "bin" / "livekit-server"
    on_path = tmp_path / "path" / "livekit-server"
    for binary in (cached, on_path):
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert livekit_server.find_server() == on_path


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
