"""The download helper against a real HTTP server on loopback: progress, resume, checksum."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading

import pytest

from tests.conftest import write_cifar_archive, write_tiny_imagenet, zip_folder
from training.data import download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class RangeHandler(http.server.BaseHTTPRequestHandler):
    requests: list[str | None] = []

    def do_GET(self):
        RangeHandler.requests.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        self.wfile.write(PAYLOAD[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/archive.tar.gz"
    httpd.shutdown()


MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_download_verifies_and_reports_progress(server, tmp_path):
    progress = io.StringIO()
    path = download.fetch(server, tmp_path / "a.tar.gz", MD5, stream=progress)
    assert path.read_bytes() == PAYLOAD
    assert "1.0/1.0 MB" in progress.getvalue()
    assert not (tmp_path / "a.tar.gz.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    (tmp_path / "a.tar.gz.part").write_bytes(PAYLOAD[:300_000])
    path = download.fetch(server, tmp_path / "a.tar.gz", MD5, stream=io.StringIO())
    assert path.read_bytes() == PAYLOAD
    assert RangeHandler.requests == ["bytes=300000-"]


def test_download_skips_a_verified_file(server, tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(PAYLOAD)
    download.fetch(server, tmp_path / "a.tar.gz", MD5, stream=io.StringIO())
    assert RangeHandler.requests == []


def test_checksum_mismatch_is_an_error_and_removes_the_file(server, tmp_path):
    with pytest.raises(download.DownloadError, match="checksum mismatch"):
        download.fetch(server, tmp_path / "a.tar.gz", "0" * 32, stream=io.StringIO())
    assert not (tmp_path / "a.tar.gz").exists() and not (tmp_path / "a.tar.gz.part").exists()


def test_unreachable_server_keeps_the_partial_file(tmp_path):
    (tmp_path / "a.tar.gz.part").write_bytes(b"partial")
    with pytest.raises(download.DownloadError, match="run the command again to resume"):
        download.fetch("http://127.0.0.1:9/none", tmp_path / "a.tar.gz", MD5, timeout=2, stream=io.StringIO())
    assert (tmp_path / "a.tar.gz.part").read_bytes() == b"partial"


def test_unknown_dataset():
    with pytest.raises(download.DownloadError, match="unknown dataset 'imagenet'"):
        download.download("imagenet", "/tmp")


@pytest.mark.parametrize("dataset", list(download.ARCHIVES))
def test_the_loader_finds_the_archive_where_download_puts_it(dataset, tmp_path):
    """`download` names the file; the dataset's loader must find it under that name in the folder."""
    from training.data import Limits, load_dataset

    archive = tmp_path / "data" / download.ARCHIVES[dataset].filename
    archive.parent.mkdir()
    if dataset == "cifar10":
        write_cifar_archive(archive)
    else:
        zip_folder(write_tiny_imagenet(tmp_path / "source", extras=False), archive)
    loaded = load_dataset(dataset, archive.parent, (16, 16), Limits(12, 6))
    assert len(loaded.train) > 0 and loaded.train.images.shape[1:] == (16, 16, 3)
