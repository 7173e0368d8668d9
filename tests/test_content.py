"""The content store (appliance/content.py): files stored once by SHA-256, read-only,
renamed in only when whole, and a failed copy leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from appliance.content import CONTENT_MODE, ContentStore
from appliance.errors import NotFoundError

BODY = b"%PDF-1.7 scanned page\n" * 100
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


def test_a_file_is_stored_under_its_hash_read_only(content: ContentStore) -> None:
    """put_bytes returns (sha256, size); the file sits at sha256/ab/cd/<hex>, mode 0440, in
    0700 folders, and reads back identical."""
    stored = content.put_bytes(BODY)
    assert (stored.sha256, stored.size) == (SHA, len(BODY))
    path = content.path(SHA)
    assert path == content.root / "sha256" / SHA[:2] / SHA[2:4] / SHA
    assert path.stat().st_mode & 0o777 == CONTENT_MODE
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert content.exists(SHA)
    with content.open(SHA) as fh:
        assert fh.read() == BODY
    assert content.hash_file(SHA) == SHA
    assert list(content.iter_hashes()) == [SHA]


def test_the_same_bytes_are_stored_once(content: ContentStore) -> None:
    """A second copy of the same file leaves one blob and no temporary file."""
    content.put_bytes(BODY)
    again = content.put_stream(io.BytesIO(BODY))
    assert again.sha256 == SHA and list(content.iter_hashes()) == [SHA]
    assert list((content.root / "tmp").iterdir()) == []


def test_a_missing_file_is_not_found(content: ContentStore) -> None:
    """open and hash_file name the missing hash; an empty store lists nothing."""
    assert list(content.iter_hashes()) == [] and not content.exists(SHA)
    with pytest.raises(NotFoundError, match=f"content {SHA} is not in the store"):
        content.open(SHA)
    with pytest.raises(NotFoundError, match="is not in the store"):
        content.hash_file(SHA)


def test_a_changed_blob_no_longer_hashes_to_its_name(content: ContentStore) -> None:
    """hash_file reads the bytes on disk: one flipped bit shows (what fixity relies on)."""
    content.put_bytes(BODY)
    path = content.path(SHA)
    path.chmod(0o640)
    damaged = bytearray(BODY)
    damaged[100] ^= 0x01
    path.write_bytes(bytes(damaged))
    assert content.hash_file(SHA) != SHA


def test_a_stream_that_fails_midway_stores_nothing(content: ContentStore) -> None:
    """The error reaches the caller; no blob and no temporary file remain."""

    class Breaks(io.BytesIO):
        calls = 0

        def read(self, size: int | None = -1) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise OSError("scanner disconnected")
            return b"first part"

    with pytest.raises(OSError, match="scanner disconnected"):
        content.put_stream(Breaks())
    assert list(content.iter_hashes()) == []
    assert list((content.root / "tmp").iterdir()) == []


def test_an_empty_file_is_a_file(content: ContentStore) -> None:
    """Zero bytes are stored like any other content."""
    stored = content.put_bytes(b"")
    assert stored.size == 0 and stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert content.path(stored.sha256).read_bytes() == b""
