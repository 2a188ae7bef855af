"""Azurite helpers for the benchmarks, with Python's standard library only (an implementation
independent of the tools being measured). The account is Azurite's well-known one.

usage: azblob.py sas                                 an account SAS (every permission, until 2099)
       azblob.py count ENDPOINT CONTAINER [PREFIX]   "BLOBS BYTES" in the container (all pages)
       azblob.py delete ENDPOINT CONTAINER           deletes the container (gone already: fine)
       azblob.py get ENDPOINT CONTAINER BLOB FILE    downloads one blob into FILE, streaming
ENDPOINT is the account's URL: http://127.0.0.1:PORT/devstoreaccount1
"""

import base64
import hashlib
import hmac
import re
import sys
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
VERSION = "2019-12-12"


def sas():
    sp, ss, srt, se, spr = "rwdlac", "b", "sco", "2099-01-01T00:00:00Z", "https,http"
    to_sign = "\n".join([ACCOUNT, sp, ss, srt, "", se, "", spr, VERSION, ""])
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
    return urlencode({"sv": VERSION, "ss": ss, "srt": srt, "sp": sp, "se": se, "spr": spr, "sig": sig})


def request(method, url):
    req = urllib.request.Request(url, method=method, headers={"x-ms-version": VERSION})
    return urllib.request.urlopen(req, timeout=60)


def count(endpoint, container, prefix=""):
    blobs = size = 0
    marker = ""
    while True:
        query = f"restype=container&comp=list&maxresults=5000&prefix={quote(prefix)}&marker={quote(marker)}&{sas()}"
        try:
            text = request("GET", f"{endpoint}/{container}?{query}").read().decode()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return 0, 0
            raise
        blobs += text.count("<Blob>")
        size += sum(int(n) for n in re.findall(r"<Content-Length>(\d+)</Content-Length>", text))
        marker = (re.findall(r"<NextMarker>([^<]*)</NextMarker>", text) or [""])[0]
        if not marker:
            return blobs, size


def delete(endpoint, container):
    try:
        request("DELETE", f"{endpoint}/{container}?restype=container&{sas()}").read()
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise


def get(endpoint, container, blob, path):
    with request("GET", f"{endpoint}/{container}/{quote(blob)}?{sas()}") as answer, open(path, "wb") as out:
        while chunk := answer.read(1 << 20):
            out.write(chunk)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sas":
        print(sas())
    elif cmd == "count":
        print(*count(*args))
    elif cmd == "delete":
        delete(*args)
    elif cmd == "get":
        get(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
