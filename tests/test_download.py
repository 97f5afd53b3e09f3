"""Offline tests for unetskip.data.download against a local HTTP server with Range support."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import socket
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from unetskip.data import download
from unetskip.data.download import (
    Archive,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    dataset_is_complete,
    download_oxford_pet,
)

# Random-ish payload so the gzip archive is big enough to split for the resume test.
JPG_BYTES = hashlib.sha512(b"cat").digest() * 512
SOURCE_FILES = {
    "images/Abyssinian_1.jpg": JPG_BYTES,
    "images/beagle_2.jpg": JPG_BYTES[::-1],
    "annotations/trimaps/Abyssinian_1.png": b"\x89PNG trimap 1",
    "annotations/trimaps/beagle_2.png": b"\x89PNG trimap 2",
    "annotations/trainval.txt": b"Abyssinian_1 1 1 1\n",
    "annotations/test.txt": b"beagle_2 13 2 1\n",
}


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """Static file handler that also answers ``Range: bytes=N-`` with 206 (or 416)."""

    server: RecordingServer

    def do_GET(self) -> None:
        range_header = self.headers.get("Range")
        self.server.requests.append((self.path, range_header))
        if range_header is None or not self.server.honour_range:
            super().do_GET()
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean


class RecordingServer(ThreadingHTTPServer):
    """Serves ``directory`` and records ``(path, Range header)`` of every GET."""

    daemon_threads = True

    def __init__(self, directory: Path) -> None:
        super().__init__(("127.0.0.1", 0), partial(RangeRequestHandler, directory=str(directory)))
        self.requests: list[tuple[str, str | None]] = []
        self.honour_range = True

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def served_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "served"
    directory.mkdir()
    return directory


@pytest.fixture
def server(served_dir: Path) -> Iterator[RecordingServer]:
    httpd = RecordingServer(served_dir)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "oxford-iiit-pet"


@pytest.fixture
def pet_archives(served_dir: Path) -> tuple[Archive, ...]:
    """Synthetic images.tar.gz and annotations.tar.gz in the official layout."""
    return tuple(
        _write_tar(served_dir / f"{top}.tar.gz", top, _members_under(top))
        for top in ("images", "annotations")
    )


def _members_under(top: str) -> list[tarfile.TarInfo | tuple[str, bytes]]:
    members: list[tarfile.TarInfo | tuple[str, bytes]] = [_dir_info(top)]
    if top == "annotations":
        members.append(_dir_info("annotations/trimaps"))
    members += [(name, data) for name, data in SOURCE_FILES.items() if name.startswith(top)]
    return members


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def _write_tar(path: Path, extracts_to: str, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Archive:
    """Write ``members`` (TarInfos, or ``(name, bytes)`` files) to ``path``; return its Archive."""
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return Archive(path.name, md5, extracts_to)


def _assert_extracted(root: Path) -> None:
    for name, data in SOURCE_FILES.items():
        assert (root / name).read_bytes() == data
    assert dataset_is_complete(root)
    assert not list(root.glob("*.part"))
    assert not list(root.glob("*.tar.gz"))
    assert not list(root.glob(".*"))  # no staging folders left


def test_download_and_extract(server, pet_archives, root):
    download_oxford_pet(root, server.base_url, pet_archives, progress=False)

    _assert_extracted(root)
    assert server.requests == [("/images.tar.gz", None), ("/annotations.tar.gz", None)]


def test_dataset_is_complete_is_false_when_a_split_list_is_missing(server, pet_archives, root):
    download_oxford_pet(root, server.base_url, pet_archives, progress=False)
    (root / "annotations" / "test.txt").unlink()

    assert not dataset_is_complete(root)


def test_resumes_partial_download_with_range_request(server, served_dir, pet_archives, root):
    data = (served_dir / "images.tar.gz").read_bytes()
    half = len(data) // 2
    root.mkdir(parents=True)
    (root / "images.tar.gz.part").write_bytes(data[:half])

    download_oxford_pet(root, server.base_url, pet_archives, progress=False)

    assert ("/images.tar.gz", f"bytes={half}-") in server.requests
    assert ("/annotations.tar.gz", None) in server.requests
    _assert_extracted(root)


def test_restarts_when_server_ignores_range(server, pet_archives, root):
    server.honour_range = False
    root.mkdir(parents=True)
    # Garbage, not a prefix: appending the full body to it would fail the checksum.
    (root / "images.tar.gz.part").write_bytes(b"x" * 100)

    download_oxford_pet(root, server.base_url, pet_archives, progress=False)

    assert ("/images.tar.gz", "bytes=100-") in server.requests
    _assert_extracted(root)


def test_complete_part_file_is_accepted_after_416(server, served_dir, pet_archives, root):
    root.mkdir(parents=True)
    (root / "images.tar.gz.part").write_bytes((served_dir / "images.tar.gz").read_bytes())

    download_oxford_pet(root, server.base_url, pet_archives, progress=False)

    _assert_extracted(root)


def test_wrong_checksum_raises_and_cleans_up(server, pet_archives, root):
    images, annotations = pet_archives
    bad = Archive(images.filename, "0" * 32, images.extracts_to)

    with pytest.raises(ChecksumError) as excinfo:
        download_oxford_pet(root, server.base_url, (bad, annotations), progress=False)

    message = str(excinfo.value)
    assert "images.tar.gz" in message
    assert "0" * 32 in message
    assert images.md5 in message
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("stdlib_filter", [True, False], ids=["data_filter", "fallback"])
@pytest.mark.parametrize("evil", ["dotdot", "absolute", "symlink", "link_through_symlink"])
def test_unsafe_archive_is_rejected(server, served_dir, root, tmp_path, monkeypatch, evil, stdlib_filter):
    if not stdlib_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    members, bad_name = _evil_members(evil, tmp_path)
    archive = _write_tar(served_dir / "images.tar.gz", "images", members)

    with pytest.raises(UnsafeArchiveError) as excinfo:
        download_oxford_pet(root, server.base_url, [archive], progress=False)

    assert "images.tar.gz" in str(excinfo.value)
    assert bad_name in str(excinfo.value)
    assert not list(tmp_path.rglob("evil*"))
    assert [p.name for p in root.iterdir()] == ["images.tar.gz"]  # no images/, no staging


def _evil_members(evil: str, tmp_path: Path) -> tuple[list, str]:
    """Members of an archive that tries to escape, and the name of the offending member."""
    payload = [("images/ok.jpg", b"fine")]
    if evil == "dotdot":
        return [*payload, ("images/../../evil.txt", b"pwned")], "images/../../evil.txt"
    if evil == "absolute":
        name = str(tmp_path / "evil.txt")
        return [*payload, (name, b"pwned")], name
    link = tarfile.TarInfo("images/evil_link")
    link.type = tarfile.SYMTYPE
    if evil == "symlink":
        link.linkname = "../../.."
        return [*payload, link], "images/evil_link"
    # A harmless-looking link to a link that climbs out: only resolving on disk catches it.
    up = tarfile.TarInfo("images/up")
    up.type = tarfile.SYMTYPE
    up.linkname = ".."
    link.linkname = "up/.."
    return [*payload, up, link, ("images/evil_link/evil.txt", b"pwned")], "images/evil_link"


def test_stdlib_filter_errors_become_unsafe_archive_error(server, served_dir, root, tmp_path, monkeypatch):
    if not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile extraction filters")
    monkeypatch.setattr(download, "_check_member", lambda *args: None)
    archive = _write_tar(served_dir / "images.tar.gz", "images", [("../evil.txt", b"pwned")])

    with pytest.raises(UnsafeArchiveError, match=r"images\.tar\.gz.*\.\./evil\.txt"):
        download_oxford_pet(root, server.base_url, [archive], progress=False)
    assert not (root / "evil.txt").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_network_explains_manual_download(pet_archives, root):
    url = f"http://127.0.0.1:{_free_port()}"

    with pytest.raises(DownloadError) as excinfo:
        download_oxford_pet(root, url, pet_archives, progress=False, timeout=2)

    message = str(excinfo.value)
    assert f"{url}/images.tar.gz" in message
    assert "refused" in message.lower()
    assert "https://www.robots.ox.ac.uk/~vgg/data/pets/" in message
    assert "data.download" in message
    assert str(root / "images") in message


def test_silent_server_times_out(pet_archives, root):
    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        with pytest.raises(DownloadError, match="timed out") as excinfo:
            download_oxford_pet(root, url, pet_archives, progress=False, timeout=0.2)

    assert "data.download" in str(excinfo.value)


def test_http_error_status_raises_download_error(server, pet_archives, root):
    missing = Archive("missing.tar.gz", pet_archives[0].md5, "images")

    with pytest.raises(DownloadError, match=r"missing\.tar\.gz: HTTP 404") as excinfo:
        download_oxford_pet(root, server.base_url, [missing], progress=False)

    assert not isinstance(excinfo.value, ChecksumError)
    assert "data.download" in str(excinfo.value)


def test_second_call_makes_no_request(server, pet_archives, root):
    download_oxford_pet(root, server.base_url, pet_archives, progress=False)
    server.requests.clear()

    download_oxford_pet(root, server.base_url, pet_archives, progress=False)

    assert server.requests == []
    _assert_extracted(root)


def test_kept_archive_is_reused_instead_of_downloaded(server, pet_archives, root):
    download_oxford_pet(root, server.base_url, pet_archives, progress=False, keep_archives=True)
    assert sorted(p.name for p in root.glob("*.tar.gz")) == [
        "annotations.tar.gz",
        "images.tar.gz",
    ]
    shutil.rmtree(root / "images")
    shutil.rmtree(root / "annotations")
    server.requests.clear()

    download_oxford_pet(root, server.base_url, pet_archives, progress=False)

    assert server.requests == []
    _assert_extracted(root)
