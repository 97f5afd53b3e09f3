"""Download and safely extract the Oxford-IIIT Pet dataset.

After :func:`download_oxford_pet` the dataset folder ``root`` holds ``images/*.jpg``,
``annotations/trimaps/*.png``, ``annotations/trainval.txt`` and ``annotations/test.txt``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

HOMEPAGE_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data"
CHUNK_SIZE = 1 << 20

# Everything that means "the server could not be reached or stopped answering".
_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)


@dataclass(frozen=True)
class Archive:
    """One downloadable archive: its file name, MD5, and the top folder it unpacks to."""

    filename: str
    md5: str
    extracts_to: str


# Checksums as published by torchvision; images.tar.gz is 791,918,971 bytes.
PET_ARCHIVES = (
    Archive("images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c", "images"),
    Archive("annotations.tar.gz", "95a8c909bbe2e81eed6a22bccdf3f68f", "annotations"),
)


class DownloadError(RuntimeError):
    """The dataset could not be downloaded or unpacked."""


class ChecksumError(DownloadError):
    """A downloaded archive does not have the expected MD5."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the extraction folder."""


def dataset_is_complete(root: str | Path) -> bool:
    """Return whether ``root`` holds the images, trimaps and both split lists."""
    root = Path(root)
    annotations = root / "annotations"
    return (
        (root / "images").is_dir()
        and (annotations / "trimaps").is_dir()
        and (annotations / "trainval.txt").is_file()
        and (annotations / "test.txt").is_file()
    )


def download_oxford_pet(
    root: str | Path,
    base_url: str = BASE_URL,
    archives: Sequence[Archive] = PET_ARCHIVES,
    progress: bool = True,
    timeout: float = 30.0,
    keep_archives: bool = False,
) -> None:
    """Download and extract every archive whose folder is not yet in ``root``.

    Interrupted downloads resume from ``root/<filename>.part``; an archive already in ``root``
    with the right MD5 is not fetched again.

    Raises:
        DownloadError: the server could not be reached (the message says how to download by hand).
        ChecksumError: a downloaded archive has the wrong MD5 (the bad file is deleted).
        UnsafeArchiveError: an archive member points outside the dataset folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        if (root / archive.extracts_to).is_dir():
            continue
        archive_path = _fetch_verified(archive, root, base_url, progress, timeout)
        _extract(archive_path, archive, root)
        if not keep_archives:
            archive_path.unlink()


def _fetch_verified(archive: Archive, root: Path, base_url: str, progress: bool, timeout: float) -> Path:
    """Return ``root/<filename>`` with a verified MD5, downloading it unless already there."""
    final = root / archive.filename
    if final.exists():
        if _md5(final) == archive.md5:
            return final
        final.unlink()  # corrupt or from another release: fetch a fresh copy
    part = final.with_name(final.name + ".part")
    _download(f"{base_url.rstrip('/')}/{archive.filename}", part, progress, timeout)
    actual = _md5(part)
    if actual != archive.md5:
        part.unlink()  # resuming onto corrupt bytes would never succeed
        raise ChecksumError(
            f"Checksum mismatch for {archive.filename}: expected MD5 {archive.md5}, got {actual}. "
            "The download was deleted; run again to retry."
        )
    part.replace(final)
    return final


def _download(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Fetch ``url`` into ``part``, continuing after the bytes already in it."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status != 206:
                offset = 0  # the server ignored the Range header and sends everything
            length = response.headers.get("Content-Length")
            expected = offset + int(length) if length else None
            _write_response(response, part, offset, expected, progress)
        size = part.stat().st_size
        if expected is not None and size < expected:
            reason = f"connection closed after {size} of {expected} bytes (run again to resume)"
            raise _network_error(url, reason, part.parent)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return  # nothing left to send: the part is complete and the checksum decides
        raise _network_error(url, f"HTTP {err.code} {err.reason}", part.parent) from err
    except _NETWORK_ERRORS as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        raise _network_error(url, str(reason) or type(err).__name__, part.parent) from err


def _write_response(
    response: http.client.HTTPResponse,
    part: Path,
    offset: int,
    expected: int | None,
    progress: bool,
) -> None:
    """Stream ``response`` into ``part``, appending when ``offset`` > 0."""
    with (
        part.open("ab" if offset else "wb") as file,
        tqdm(
            total=expected,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        ) as bar,
    ):
        while chunk := response.read(CHUNK_SIZE):
            file.write(chunk)
            bar.update(len(chunk))


def _network_error(url: str, reason: str, root: Path) -> DownloadError:
    return DownloadError(
        f"Could not download {url}: {reason}.\n"
        f"To download by hand, get images.tar.gz and annotations.tar.gz from {HOMEPAGE_URL} and "
        f"extract both into {root} so that {root / 'images'} and {root / 'annotations'} exist, "
        "then run with `download: false` (config key `data.download`)."
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive_path: Path, archive: Archive, root: Path) -> None:
    """Unpack into a staging folder, then move its top folder into ``root`` in one rename.

    A crash mid-extraction thus leaves only the staging folder, never a half ``root/images``.
    """
    staging = root / f".{archive.extracts_to}.extracting"
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of an interrupted run
    staging.mkdir()
    try:
        with tarfile.open(archive_path) as tar:
            _extract_members(tar, staging, archive_path.name)
        top = staging / archive.extracts_to
        if not top.is_dir():
            raise DownloadError(f"{archive_path.name} has no top-level {archive.extracts_to}/")
        top.replace(root / archive.extracts_to)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_members(tar: tarfile.TarFile, dest: Path, archive_name: str) -> None:
    """Extract ``tar`` into ``dest``, vetting each member just before it is written.

    Vetting member by member (rather than all up front) lets symlinks extracted earlier be
    resolved on disk, so a path through such a link cannot escape ``dest`` either.
    """
    dest_real = os.path.realpath(dest)
    if not hasattr(tarfile, "data_filter"):
        # Python < 3.10.12 / 3.11.4 has no extraction filters: our own check is all there is.
        for member in tar:
            _check_member(member, dest_real, archive_name)
            tar.extract(member, dest_real)
        return

    def vetted(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        # The data filter would silently strip a leading "/"; reject it with our check first.
        _check_member(member, dest_real, archive_name)
        return tarfile.data_filter(member, path)

    try:
        tar.extractall(dest_real, filter=vetted)
    except tarfile.FilterError as err:
        raise UnsafeArchiveError(
            f"Refusing to extract {archive_name}: member {err.tarinfo.name!r} is unsafe ({err})."
        ) from err


def _check_member(member: tarfile.TarInfo, dest: str, archive_name: str) -> None:
    """Raise UnsafeArchiveError unless ``member`` stays inside ``dest`` (a real path)."""
    reason = _unsafe_reason(member, dest)
    if reason:
        raise UnsafeArchiveError(f"Refusing to extract {archive_name}: member {member.name!r} {reason}.")


def _unsafe_reason(member: tarfile.TarInfo, dest: str) -> str | None:
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "has a '..' component"
    if not _resolves_inside(dest, os.path.join(dest, name)):
        return "resolves outside the target folder"
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            return "is a link with an absolute target"
        # Symlink targets are relative to the link's folder, hard link targets to the archive root.
        base = os.path.dirname(name) if member.issym() else ""
        if not _resolves_inside(dest, os.path.join(dest, base, member.linkname)):
            return "links outside the target folder"
    elif not (member.isfile() or member.isdir()):
        return "is a device or FIFO"
    return None


def _resolves_inside(dest: str, path: str) -> bool:
    return os.path.commonpath([dest, os.path.realpath(path)]) == dest
