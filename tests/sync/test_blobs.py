"""The centre's folder blob store (sync/central/blobs.py): a blob becomes visible only whole
and with its SHA-256; uploads grow by appends at their exact end, in one or two lanes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from sync.central.blobs import BlobStore, FolderBlobStore
from sync.errors import ContentError

BODY = bytes(range(256)) * 40  # 10 240 bytes
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def blobs(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "content")


def _uploads(blobs: FolderBlobStore) -> list[str]:
    return sorted(p.name for p in (blobs.root / "uploads").iterdir())


def test_the_folder_store_is_a_blob_store(blobs: FolderBlobStore) -> None:
    """FolderBlobStore has every method of the BlobStore seam."""
    for name in [n for n in vars(BlobStore) if not n.startswith("_")]:
        assert callable(getattr(blobs, name)), name


@pytest.mark.parametrize(
    "name",
    ["A" * 64, "ab" * 31, "ab" * 33, "../" + "a" * 61, "g" * 64, ""],
    ids=["upper-case", "short", "long", "path", "not-hex", "empty"],
)
def test_a_name_that_is_not_a_lower_case_sha256_is_refused(
    blobs: FolderBlobStore, name: str
) -> None:
    """Every entry point checks the name before touching the disk."""
    for call in (blobs.has, blobs.partial_size, blobs.discard_partial, blobs.lane):
        with pytest.raises(ContentError, match="is not a lower-case hex SHA-256"):
            call(name)
    with pytest.raises(ContentError, match="is not a lower-case hex SHA-256"):
        blobs.append_partial(name, 0, b"x")
    assert _uploads(blobs) == []


def test_a_partial_grows_only_at_its_end_and_becomes_the_blob_when_whole(
    blobs: FolderBlobStore,
) -> None:
    """Appends at the partial's size; a wrong offset names the real one; a whole, matching
    partial is renamed to sha256/ab/cd/<sha>, read-only, and the upload is gone."""
    assert blobs.partial_size(SHA) == 0 and not blobs.has(SHA)
    assert blobs.append_partial(SHA, 0, BODY[:4000]) == 4000
    with pytest.raises(ContentError, match="is at 4000, not 3000") as info:
        blobs.append_partial(SHA, 3000, BODY[3000:5000])
    assert info.value.offset == 4000 and blobs.partial_size(SHA) == 4000
    with pytest.raises(ContentError, match="is at 4000, not 9000"):
        blobs.append_partial(SHA, 9000, BODY[9000:])
    assert blobs.append_partial(SHA, 4000, BODY[4000:]) == len(BODY)
    assert not blobs.has(SHA)  # not visible before it is finished
    assert blobs.finish_partial(SHA)
    path = blobs.path(SHA)
    assert path == blobs.root / "sha256" / SHA[:2] / SHA[2:4] / SHA
    assert path.read_bytes() == BODY and path.stat().st_mode & 0o777 == 0o444
    assert blobs.has(SHA) and blobs.partial_size(SHA) == 0 and _uploads(blobs) == []
    with blobs.open(SHA) as fh:
        assert fh.read() == BODY


def test_a_partial_whose_hash_differs_is_discarded(blobs: FolderBlobStore) -> None:
    """One flipped bit anywhere in the upload: nothing is kept, the upload starts again."""
    damaged = bytearray(BODY)
    damaged[5000] ^= 0x10
    blobs.append_partial(SHA, 0, bytes(damaged))
    assert blobs.finish_partial(SHA) is False
    assert not blobs.has(SHA) and blobs.partial_size(SHA) == 0 and _uploads(blobs) == []


def test_two_lanes_are_joined_checked_and_renamed_in(blobs: FolderBlobStore) -> None:
    """Lane 0 is the partial, the second lane starts at ``start``: each grows at its own end,
    lane()/lanes() report it, and finish_lanes makes the blob from both."""
    start = 6000
    with pytest.raises(ContentError, match="cannot start at 0"):
        blobs.open_lane(SHA, 0)
    blobs.open_lane(SHA, start)
    assert blobs.lane(SHA) == (start, start)
    with pytest.raises(ContentError, match=f"lane {start} of {SHA} is at {start}, not 7000"):
        blobs.append_lane(SHA, start, 7000, BODY[7000:])
    assert blobs.append_lane(SHA, start, start, BODY[start:8000]) == 8000
    assert blobs.append_lane(SHA, start, 8000, BODY[8000:]) == len(BODY)
    assert blobs.append_partial(SHA, 0, BODY[:start]) == start
    other = hashlib.sha256(b"other").hexdigest()
    assert blobs.lane(SHA) == (start, len(BODY)) and blobs.lane(other) is None
    assert blobs.lanes([SHA, other]) == {SHA: (start, len(BODY))}
    assert blobs.finish_lanes(SHA)
    assert blobs.path(SHA).read_bytes() == BODY and _uploads(blobs) == []
    assert blobs.lane(SHA) is None


def test_lanes_that_do_not_make_the_file_are_both_discarded(blobs: FolderBlobStore) -> None:
    """A gap or overlap between the lanes gives another hash: both go, nothing is kept."""
    blobs.open_lane(SHA, 6000)
    blobs.append_lane(SHA, 6000, 6000, BODY[6000:])
    blobs.append_partial(SHA, 0, BODY[:5999])  # one byte short of the lane
    assert blobs.finish_lanes(SHA) is False
    assert not blobs.has(SHA) and blobs.lane(SHA) is None and _uploads(blobs) == []


def test_finish_lanes_without_a_second_lane_finishes_the_partial(blobs: FolderBlobStore) -> None:
    """A file sent in one lane is finished the same way through finish_lanes."""
    blobs.append_partial(SHA, 0, BODY)
    assert blobs.finish_lanes(SHA) and blobs.has(SHA)


def test_discard_partial_removes_both_lanes(blobs: FolderBlobStore) -> None:
    """Discarding an upload leaves nothing of it in uploads/."""
    blobs.append_partial(SHA, 0, BODY[:100])
    blobs.open_lane(SHA, 5000)
    blobs.append_lane(SHA, 5000, 5000, BODY[5000:6000])
    blobs.discard_partial(SHA)
    assert _uploads(blobs) == [] and blobs.partial_size(SHA) == 0 and blobs.lane(SHA) is None


def test_put_stream_keeps_a_file_only_if_its_hash_matches(blobs: FolderBlobStore) -> None:
    """A whole file (a USB import) is copied in and checked; a wrong one leaves no trace; one
    already held is not read again."""
    assert blobs.put_stream(SHA, io.BytesIO(BODY[:-1])) is False
    assert not blobs.has(SHA) and _uploads(blobs) == []
    assert blobs.put_stream(SHA, io.BytesIO(BODY))
    assert blobs.path(SHA).read_bytes() == BODY

    class Unread(io.BytesIO):
        def read(self, *args: object) -> bytes:
            raise AssertionError("an existing blob was read again")

    assert blobs.put_stream(SHA, Unread())


def test_a_copy_that_fails_midway_leaves_no_temporary_file(blobs: FolderBlobStore) -> None:
    """The source breaking mid-copy raises, and neither the blob nor its temp file remains."""

    class Breaks(io.BytesIO):
        def __init__(self) -> None:
            super().__init__(BODY)
            self.reads = 0

        def read(self, size: int | None = -1) -> bytes:
            self.reads += 1
            if self.reads > 1:
                raise OSError("USB stick pulled out")
            return super().read(100)

    with pytest.raises(OSError, match="USB stick pulled out"):
        blobs.put_stream(SHA, Breaks())
    assert not blobs.has(SHA) and _uploads(blobs) == []


def test_remove_deletes_the_blob_and_any_upload_of_it(blobs: FolderBlobStore) -> None:
    """A purge removes the read-only blob and an upload in progress; a second says False."""
    blobs.put_stream(SHA, io.BytesIO(BODY))
    blobs.append_partial(SHA, 0, BODY[:10])
    assert blobs.remove(SHA) is True
    assert not blobs.has(SHA) and _uploads(blobs) == []
    assert blobs.remove(SHA) is False
