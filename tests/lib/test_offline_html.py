"""The offline dashboard's rewrite of asv's index.html (the browser test opens the result)."""

import os

import pytest

from torch_overhead.lib.offline_html import VENDOR, OfflineHtmlError, make_self_contained, remote_loads

ASV_HEAD = """<html><head>
<script src="https://code.jquery.com/jquery-3.3.1.min.js" integrity="sha256-x" crossorigin="anonymous"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js"></script>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css">
<script src="asv.js"></script>
</head><body><a href="https://github.com/airspeed-velocity/asv/">asv</a></body></html>
"""


def write_index(path, text):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "index.html"), "w") as f:
        f.write(text)
    return str(path)


def read_index(path):
    with open(os.path.join(path, "index.html")) as f:
        return f.read()


def test_cdn_tags_point_at_local_copies_and_links_stay(tmp_path):
    html = write_index(tmp_path / "html", ASV_HEAD)
    assert len(remote_loads(html)) == 3
    make_self_contained(html)
    text = read_index(html)
    assert remote_loads(html) == []
    assert '<script src="vendor/jquery-3.3.1.min.js"></script>' in text  # integrity and crossorigin dropped
    assert 'href="vendor/bootstrap.min.css"' in text and '<script src="asv.js">' in text
    assert 'href="https://github.com/airspeed-velocity/asv/"' in text  # a link is not a load
    assert sorted(os.listdir(os.path.join(html, "vendor"))) == sorted(os.listdir(VENDOR))
    make_self_contained(html)  # again, on its own output: nothing changes
    assert read_index(html) == text


def test_a_cdn_file_without_a_local_copy_is_refused_untouched(tmp_path):
    page = ASV_HEAD.replace("asv.js", "https://cdn.example.org/d3.min.js")
    html = write_index(tmp_path / "html", page)
    with pytest.raises(OfflineHtmlError, match="d3.min.js"):
        make_self_contained(html)
    assert read_index(html) == page and not os.path.exists(os.path.join(html, "vendor"))


def test_the_package_ships_every_vendored_file():
    """Every file the rewrite points at is in the folder, and pyproject's package-data names the
    folder, so a package installed from a wheel (not editable) has it too."""
    import tomllib

    from conftest import ROOT
    from torch_overhead.lib.offline_html import VENDORED

    assert set(VENDORED.values()) | {"LICENSES.txt", "README.md"} <= set(os.listdir(VENDOR))
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    assert "dashboard_vendor/*" in package_data["torch_overhead.lib"]
