"""A stand-in for the Compute Engine images API (v1 REST): no emulator of it exists.

It answers the calls fedimg's gcp target makes, with the request shapes and answers of the real
API (https://compute.googleapis.com/compute/v1/projects/{project}/global/...), and records
every request (``RecordedApi``) so tests assert on what was really sent:

- ``images``: insert (an operation), get, list (``filter``: ``field = "value"`` terms joined by
  AND, on name, family, status and ``labels.<key>``), delete, deprecate, getIamPolicy,
  setIamPolicy (etag-checked);
- ``globalOperations``: get and wait. An operation is RUNNING when returned and DONE at its
  first poll, or on its own ``settle`` seconds later (as GCE finishes an insert whose caller
  died), so a client sees an image READY only after waiting for it.

What the real API refuses, this refuses with the same status and reason: names, families, label
keys and values outside GCE's patterns, unknown guest OS features and architectures, an image
name that exists (409 alreadyExists), a missing image (404 notFound). An insert's
``rawDisk.source`` must be ``https://storage.googleapis.com/<bucket>/<object>``; when the
stand-in knows the storage emulator's URL it reads that object like GCE would, and the operation
fails (image FAILED) unless it is a gzip tar whose first member is ``disk.raw``.
``fail_insert[name] = "text"`` makes the next insert of that name fail the same way.

    python -m standins.gce_images --port 8790 [--storage-url http://127.0.0.1:9023]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import re
import tarfile
import time
import urllib.parse
from typing import Any

import requests

from standins.recorded_http import ApiRefusal, RecordedApi, Reply, error_body

NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
GUEST_OS_FEATURES = frozenset({
    "UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC", "SEV_CAPABLE", "SEV_SNP_CAPABLE",
    "SEV_LIVE_MIGRATABLE", "SEV_LIVE_MIGRATABLE_V2", "SECURE_BOOT", "MULTI_IP_SUBNET",
    "WINDOWS", "IDPF", "TDX_CAPABLE",
})
ARCHITECTURES = frozenset({"X86_64", "ARM64"})
DEPRECATION_STATES = frozenset({"ACTIVE", "DEPRECATED", "OBSOLETE", "DELETED"})
SOURCE = re.compile(r"https://storage\.googleapis\.com/(?P<bucket>[a-z0-9._-]{3,222})/(?P<obj>.+)")
P = r"/compute/v1/projects/(?P<project>[a-z][-a-z0-9]{4,28}[a-z0-9])/global"
HTTP_TIMEOUT = 30


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class GceImages(RecordedApi):
    """The images and global operations of any number of projects."""

    name = "GCE images stand-in"

    def __init__(self, storage_url: str | None = None, settle: float = 1.0) -> None:
        super().__init__()
        self.storage_url = storage_url
        self.settle = settle
        self.images: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[tuple[str, str], dict[str, Any]] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail_insert: dict[str, str] = {}
        self._ids = itertools.count(4_000_000_000_000_000_001)
        self._last_created = ""
        self.route("POST", P + r"/images", self._insert)
        self.route("GET", P + r"/images", self._list)
        self.route("GET", P + r"/images/(?P<image>[^/]+)", self._get)
        self.route("DELETE", P + r"/images/(?P<image>[^/]+)", self._delete)
        self.route("POST", P + r"/images/(?P<image>[^/]+)/deprecate", self._deprecate)
        self.route("GET", P + r"/images/(?P<image>[^/]+)/getIamPolicy", self._get_policy)
        self.route("POST", P + r"/images/(?P<image>[^/]+)/setIamPolicy", self._set_policy)
        self.route("GET", P + r"/operations/(?P<op>[^/]+)", self._op_get)
        self.route("POST", P + r"/operations/(?P<op>[^/]+)/wait", self._op_get)

    def reset(self) -> None:
        with self.lock:
            self.images.clear()
            self.operations.clear()
            self.policies.clear()
            self.fail_insert.clear()
            self.requests.clear()

    # ---- helpers -----------------------------------------------------------------------------

    def link(self, project: str, kind: str, name: str) -> str:
        return f"{self.url}/compute/v1/projects/{project}/global/{kind}/{name}"

    def _image(self, project: str, image: str) -> dict[str, Any]:
        found = self.images.get((project, image))
        if found is None:
            raise ApiRefusal(404, error_body(
                404, f"The resource 'projects/{project}/global/images/{image}' was not found",
                "notFound"))
        return found

    def _operation(self, project: str, kind: str, target: str, error: str | None = None,
                   on_done: Any = None) -> dict[str, Any]:
        name = f"operation-{next(self._ids)}"
        op = {"kind": "compute#operation", "id": str(next(self._ids)), "name": name,
              "operationType": kind, "targetLink": self.link(project, "images", target),
              "status": "RUNNING", "progress": 0, "insertTime": _now(),
              "selfLink": self.link(project, "operations", name)}
        self.operations[(project, name)] = {"op": op, "error": error, "on_done": on_done,
                                            "due": time.monotonic() + self.settle}
        return op

    def handle(self, request: Any) -> Reply:
        with self.lock:  # operations nobody waited for finish on their own
            now = time.monotonic()
            for entry in list(self.operations.values()):
                if entry["op"]["status"] != "DONE" and entry["due"] <= now:
                    self._finish(entry)
        return super().handle(request)

    def _finish(self, entry: dict[str, Any]) -> None:
        op = entry["op"]
        if op["status"] == "DONE":
            return
        op.update(status="DONE", progress=100, endTime=_now())
        if entry["error"]:
            op["error"] = {"errors": [{"code": "INVALID_IMAGE_FILE", "message": entry["error"]}]}
            op["httpErrorStatusCode"] = 400
            op["httpErrorMessage"] = "BAD REQUEST"
        if entry["on_done"]:
            entry["on_done"](entry["error"])

    def _created(self) -> str:
        # strictly increasing, so "newest in a family" is well defined even within a millisecond
        stamp = _now()
        if stamp <= self._last_created:
            last = datetime.datetime.fromisoformat(self._last_created)
            stamp = (last + datetime.timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
        self._last_created = stamp
        return stamp

    # ---- images ------------------------------------------------------------------------------

    def _insert(self, request: Any, project: str) -> Reply:
        body = request.body
        if not isinstance(body, dict):
            raise ApiRefusal(400, error_body(400, "Required field 'resource' not specified",
                                             "required"))
        name = body.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ApiRefusal(400, error_body(400, f"Invalid value for field 'resource.name': "
                                             f"'{name}'", "invalid"))
        self._check_image_fields(body)
        if (project, name) in self.images:
            raise ApiRefusal(409, error_body(
                409, f"The resource 'projects/{project}/global/images/{name}' already exists",
                "alreadyExists"))
        source = body["rawDisk"]["source"]
        image = {
            "kind": "compute#image", "id": str(next(self._ids)),
            "creationTimestamp": self._created(), "name": name,
            "description": body.get("description", ""), "sourceType": "RAW",
            "rawDisk": {"source": source, "containerType": "TAR"}, "status": "PENDING",
            "labels": dict(body.get("labels") or {}), "labelFingerprint": "42WmSpB8rSM=",
            "guestOsFeatures": list(body.get("guestOsFeatures") or []),
            "storageLocations": list(body.get("storageLocations") or []),
            "architecture": body.get("architecture", "ARCHITECTURE_UNSPECIFIED"),
            "selfLink": self.link(project, "images", name),
        }
        if body.get("family"):
            image["family"] = body["family"]
        self.images[(project, name)] = image
        error = self.fail_insert.pop(name, None) or self._check_source(source)

        def done(failed: str | None) -> None:
            image["status"] = "FAILED" if failed else "READY"
            if not failed:
                image["diskSizeGb"] = "5"

        return Reply(200, self._operation(project, "insert", name, error, done))

    def _check_image_fields(self, body: dict[str, Any]) -> None:
        raw = body.get("rawDisk")
        if not isinstance(raw, dict) or not isinstance(raw.get("source"), str):
            raise ApiRefusal(400, error_body(400, "Required field 'resource.rawDisk.source' "
                                             "not specified", "required"))
        if not SOURCE.fullmatch(raw["source"]):
            raise ApiRefusal(400, error_body(400, "Invalid value for field "
                                             f"'resource.rawDisk.source': '{raw['source']}'"))
        family = body.get("family")
        if family is not None and not (isinstance(family, str) and NAME.fullmatch(family)):
            raise ApiRefusal(400, error_body(400, f"Invalid value for field 'resource.family': "
                                             f"'{family}'"))
        labels = body.get("labels") or {}
        for key, value in labels.items():
            if not LABEL_KEY.fullmatch(key) or not (isinstance(value, str)
                                                    and LABEL_VALUE.fullmatch(value)):
                raise ApiRefusal(400, error_body(400, f"Invalid value for field "
                                                 f"'resource.labels': '{key}={value}'"))
        for feature in body.get("guestOsFeatures") or []:
            if not isinstance(feature, dict) or feature.get("type") not in GUEST_OS_FEATURES:
                raise ApiRefusal(400, error_body(400, "Invalid value for field "
                                                 f"'resource.guestOsFeatures': {feature}"))
        arch = body.get("architecture")
        if arch is not None and arch not in ARCHITECTURES:
            raise ApiRefusal(400, error_body(400, f"Invalid value for field "
                                             f"'resource.architecture': '{arch}'"))

    def _check_source(self, source: str) -> str | None:
        """Why GCE could not read the archive at `source`, or None (no storage known: None)."""
        if not self.storage_url:
            return None
        m = SOURCE.fullmatch(source)
        assert m is not None  # checked by _check_image_fields
        url = (f"{self.storage_url}/download/storage/v1/b/{m['bucket']}/o/"
               f"{urllib.parse.quote(m['obj'], safe='')}?alt=media")
        try:
            with requests.get(url, stream=True, timeout=HTTP_TIMEOUT) as resp:
                if resp.status_code == 404:
                    return f"The resource '{source}' of type 'gcs object' was not found."
                resp.raise_for_status()
                with tarfile.open(fileobj=resp.raw, mode="r|gz") as tar:
                    first = tar.next()
        except (tarfile.TarError, OSError, EOFError) as exc:
            return f"Invalid image file {source}: not a gzip compressed tar archive ({exc})"
        if first is None or first.name != "disk.raw":
            return f"Invalid image file {source}: the archive must hold one file, disk.raw"
        return None

    def _get(self, request: Any, project: str, image: str) -> Reply:
        return Reply(200, self._image(project, image))

    def _list(self, request: Any, project: str) -> Reply:
        terms = _parse_filter(request.param("filter") or "")
        items = [img for (p, _), img in sorted(self.images.items()) if p == project
                 and all(_field(img, key) == value for key, value in terms)]
        body: dict[str, Any] = {"kind": "compute#imageList",
                                "selfLink": self.link(project, "images", "")[:-1]}
        if items:
            body["items"] = items
        return Reply(200, body)

    def _delete(self, request: Any, project: str, image: str) -> Reply:
        self._image(project, image)

        def done(_: str | None) -> None:
            self.images.pop((project, image), None)
            self.policies.pop((project, image), None)

        return Reply(200, self._operation(project, "delete", image, None, done))

    def _deprecate(self, request: Any, project: str, image: str) -> Reply:
        found = self._image(project, image)
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("state") not in DEPRECATION_STATES:
            raise ApiRefusal(400, error_body(400, "Invalid value for field "
                                             f"'deprecationStatusResource.state': "
                                             f"'{body.get('state')}'"))
        if body["state"] == "ACTIVE":
            found.pop("deprecated", None)
        else:
            found["deprecated"] = dict(body)
        return Reply(200, self._operation(project, "deprecate", image))

    def _get_policy(self, request: Any, project: str, image: str) -> Reply:
        self._image(project, image)
        return Reply(200, self.policies.get((project, image), {"etag": "ACAB"}))

    def _set_policy(self, request: Any, project: str, image: str) -> Reply:
        self._image(project, image)
        body = request.body if isinstance(request.body, dict) else {}
        policy = body.get("policy")
        if not isinstance(policy, dict):
            raise ApiRefusal(400, error_body(400, "Required field 'policy' not specified",
                                             "required"))
        current = self.policies.get((project, image), {"etag": "ACAB"})
        if policy.get("etag") not in (None, current["etag"]):
            raise ApiRefusal(412, error_body(412, "Precondition Failed: the policy changed",
                                             "conditionNotMet"))
        for binding in policy.get("bindings") or []:
            if not (isinstance(binding.get("role"), str) and binding.get("members")):
                raise ApiRefusal(400, error_body(400, f"Invalid binding {binding}"))
        stored = {"bindings": policy.get("bindings") or [], "etag": f"BwY{next(self._ids)}",
                  "version": 1}
        self.policies[(project, image)] = stored
        return Reply(200, stored)

    # ---- operations --------------------------------------------------------------------------

    def _op_get(self, request: Any, project: str, op: str) -> Reply:
        entry = self.operations.get((project, op))
        if entry is None:
            raise ApiRefusal(404, error_body(
                404, f"The resource 'projects/{project}/global/operations/{op}' was not found",
                "notFound"))
        self._finish(entry)
        return Reply(200, entry["op"])


_TERM = re.compile(r'\(?\s*(?P<key>[A-Za-z][\w.\-]*)\s*=\s*"?(?P<value>[^"()]*?)"?\s*\)?')


def _parse_filter(text: str) -> list[tuple[str, str]]:
    if not text.strip():
        return []
    terms = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        m = _TERM.fullmatch(part.strip())
        if m is None:
            raise ApiRefusal(400, error_body(400, f"Invalid value for field 'filter': '{text}'"))
        terms.append((m["key"], m["value"]))
    return terms


def _field(image: dict[str, Any], key: str) -> str | None:
    if key.startswith("labels."):
        return image.get("labels", {}).get(key[len("labels."):])
    value = image.get(key)
    return value if isinstance(value, str) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--storage-url", help="the storage emulator, to read archives from")
    args = parser.parse_args(argv)
    GceImages(args.storage_url).serve_forever(args.host, args.port)


if __name__ == "__main__":
    main()
