"""The documentation: the site builds with no broken link or reference (`mkdocs build --strict`),
the README's links lead somewhere, and the error table on the Settings page is serving/core/errors.py's."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow  # Starts a process.
def test_the_site_builds_strictly(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert (tmp_path / "site" / "serving" / "index.html").is_file()


def test_the_readmes_links_lead_to_files_and_it_stays_short():
    readme = (ROOT / "README.md").read_text()
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)]+)\)", readme) if "://" not in target]
    assert links and all((ROOT / link).is_file() for link in links), [link for link in links if not (ROOT / link).is_file()]
    assert len(readme.splitlines()) <= 300, "the README is the five-minute read; the manual is docs/"


def test_the_settings_page_holds_the_error_table_of_errors_py():
    from serving.core.errors import markdown_table

    page = (ROOT / "docs" / "settings.md").read_text()
    start, end = "<!-- error table: serving.core.errors.markdown_table() -->\n", "\n<!-- end of error table -->"
    assert start in page and end in page, "docs/settings.md lost its error-table markers"
    assert page.split(start, 1)[1].split(end, 1)[0] == markdown_table(), "paste serving.core.errors.markdown_table() between the markers"


def test_the_error_table_covers_every_status_the_openapi_document_names():
    from serving.core.errors import http_statuses
    from serving.http import openapi

    named = {status for operations in openapi.document()["paths"].values() for operation in operations.values() for status in operation["responses"]}
    assert named - {"200"} <= set(http_statuses()), named - set(http_statuses())
