"""A published dashboard that opens without the internet.

asv 0.6.6's ``index.html`` loads jQuery, flot, Bootstrap, stupidtable and md5 from CDNs:
on a machine that reaches none (an air-gapped GPU cluster) the page stays blank. asv has
no option to serve them itself, so after each publish the libraries are copied into the
dashboard (``vendor/``, from ``dashboard_vendor/`` beside this module, whose README says
where each came from) and the tags are pointed at them.
"""

import os
import re
import shutil

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_vendor")
# File name in a CDN URL of asv 0.6.6's index.html -> its copy in dashboard_vendor/.
VENDORED = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot.js",
    "jquery.flot.time.min.js": "jquery.flot.time.js",
    "jquery.flot.selection.min.js": "jquery.flot.selection.js",
    "jquery.flot.categories.min.js": "jquery.flot.categories.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable-1.1.3.js",
    "md5.min.js": "md5.min.js",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
}
# A <script src=...> or <link href=...> tag that loads from another host.
_REMOTE_TAG = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"https?://[^>]*>")
_REMOTE_URL = re.compile(r'\b(src|href)="(https?://[^"]+)"')


class OfflineHtmlError(RuntimeError):
    """The page loads a remote file that has no local copy (an asv other than 0.6.6)."""


def remote_loads(html_dir):
    """The URLs ``index.html`` still loads from other hosts (script and stylesheet tags)."""
    with open(os.path.join(html_dir, "index.html"), encoding="utf-8") as f:
        text = f.read()
    return [url.group(2) for tag in _REMOTE_TAG.finditer(text) for url in _REMOTE_URL.finditer(tag.group(0))]


def make_self_contained(html_dir):
    """Copy the libraries into ``html_dir/vendor`` and point ``index.html``'s CDN tags at them,
    dropping their ``integrity``/``crossorigin`` attributes (the flot copies are unminified, so
    the CDN's hashes do not apply). Running it again on its own output changes nothing."""
    missing = [url for url in remote_loads(html_dir) if url.rsplit("/", 1)[1] not in VENDORED]
    if missing:
        raise OfflineHtmlError(f"the dashboard loads {missing}, which {VENDOR} has no copy of")
    shutil.copytree(VENDOR, os.path.join(html_dir, "vendor"), dirs_exist_ok=True)
    index = os.path.join(html_dir, "index.html")
    with open(index, encoding="utf-8") as f:
        text = f.read()

    def local(tag):
        tag = _REMOTE_URL.sub(lambda url: f'{url.group(1)}="vendor/{VENDORED[url.group(2).rsplit("/", 1)[1]]}"',
                              tag.group(0))
        return re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)

    with open(index, "w", encoding="utf-8") as f:
        f.write(_REMOTE_TAG.sub(local, text))
