"""The Koji stand-in of the local demo stack, as a long-running process: hub + "builder".

    python -m standins.koji_service --workdir DIR --port N --control-port M [--arches a,b]

It wraps ``standins.koji_hub.KojiHub`` (a real XML-RPC hub over HTTPS with client-certificate
``sslLogin``, serving files under ``/kojifiles``) and adds what a real Koji deployment does
around the hub, reduced to what the demo needs:

- a builder: ``POST /finish/<task_id>`` on the control port fills an image task that
  ``fedimg-build`` created through ``buildImageOz`` with one child per arch and a small REAL disk
  image per arch (GPT + ext4, xz-compressed, made by standins.disk_images), and closes it;
- the fedora-messaging plugin: the same call announces ``buildsys.task.state.change`` (old OPEN,
  new CLOSED, body from ``KojiHub.task_state_change_body``) through fedora-messaging, i.e. to the
  exchange and topic prefix of ``$FEDORA_MESSAGING_CONF``. Calling it again for a finished task
  only announces again: that is how the demo shows that a repeated message changes nothing;
- Pungi: ``POST /compose/<compose_id>`` lays out a compose of the same disk images below
  ``<topurl>/compose/<release>/<compose_id>/compose/`` (``Cloud/<arch>/images/`` and a
  ``metadata/images.json`` written with productmd, Cloud_Base raw-xz, Generic qcow2, Azure
  vhdfixed.xz (type vhd-compressed) and GCE tar.gz (type tar-gz) per arch, with size and
  sha256, as a Fedora 43 compose lists them), plus one small real container image per arch
  (``Container/<arch>/images/``, an OCI archive from standins.container_archives,
  Container_Base, type "container"), and announces ``pungi.compose.status.change`` with status
  FINISHED, as Pungi does.

The hub keeps its state in memory, so the stack treats a restart of this process as a new stack.
The PKI (CA, server cert, client certs) is made fresh at every start under ``<workdir>/pki``:
``ca.pem`` and ``user-<name>.pem`` (cert + key, CN = the Koji user).

Control API (127.0.0.1 only): ``GET /health`` -> {"hub": url, "topurl": ..., "ca": ...};
``POST /finish/<task_id>`` -> {"task_id", "filled", "message_id", "topic", "files"};
``POST /compose/<compose_id>`` -> {"compose_id", "message_id", "topic", "files"}.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import json
import logging
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any

import koji

from standins.cloud_archives import make_gce_archive, make_vhdfixed_xz
from standins.disk_images import MiB, make_disk_image, make_xz_image
from standins.koji_hub import TASK_STATES, KojiHub

log = logging.getLogger("koji-standin")
PUBLISH_TIMEOUT = 30  # seconds for the broker to confirm the announcement
IMAGE_SIZE = 64 * MiB  # apparent size of the demo disk images (sparse)
IMAGE_DATA_MIB = 4  # data inside their ext4 root


def make_images(directory: pathlib.Path, arches: list[str]) -> dict[str, pathlib.Path]:
    """One .raw.xz, .qcow2, Azure .vhdfixed.xz and GCE .tar.gz of the same disk per arch
    (different seed each), cached across restarts: same bytes anyway. Keys: the arch (the
    raw.xz), "<arch>.qcow2", "<arch>.vhd", "<arch>.gce"."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for n, arch in enumerate(arches):
        files = {arch: directory / f"disk-{arch}.raw.xz",
                 f"{arch}.qcow2": directory / f"disk-{arch}.qcow2",
                 f"{arch}.vhd": directory / f"disk-{arch}.vhdfixed.xz",
                 f"{arch}.gce": directory / f"disk-{arch}.tar.gz"}
        if not all(f.exists() for f in files.values()):
            raw = make_disk_image(directory / f"disk-{arch}.raw", size=IMAGE_SIZE,
                                  data_mib=IMAGE_DATA_MIB, seed=n)
            # in 1 MiB blocks, as Kiwi's `xz --threads=0` cuts a real image (its blocks are
            # 24 MiB, as large as this whole disk); written to a .part file and renamed
            make_xz_image(raw, files[arch], threads=2, block_size=MiB)
            for key, make in ((f"{arch}.qcow2", _qcow2), (f"{arch}.vhd", make_vhdfixed_xz),
                              (f"{arch}.gce", make_gce_archive)):
                part = files[key].with_name(files[key].name + ".part")  # never half there
                make(raw.path, part)
                part.replace(files[key])
            raw.path.unlink()
        out.update(files)
    return out


def _qcow2(raw: pathlib.Path, out: pathlib.Path) -> None:
    subprocess.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw),
                    str(out)], check=True, capture_output=True)


class Builder:
    """Finishes image tasks on the hub and announces them, one at a time."""

    def __init__(self, hub: KojiHub, images: dict[str, pathlib.Path]) -> None:
        self.hub = hub
        self.images = images
        self.lock = threading.Lock()  # one request at a time changes the hub

    def finish(self, task_id: int) -> dict[str, Any]:
        """Fill (once) and close ``task_id``, then announce its completion on the bus.

        The caller holds ``self.lock`` (one request at a time changes the hub)."""
        task = self.hub.tasks.get(task_id)
        if task is None:
            raise LookupError(f"no task {task_id} on this hub")
        if task["parent"] is not None or task["method"] != "image":
            raise ValueError(f"task {task_id} is not an image parent task ({task['method']})")
        filled = False
        name, version, arches, target, _tree, opts = task["request"]
        release = opts.get("release")
        if not release:
            raise ValueError(f"task {task_id} has no release in its opts")
        names = {a: f"{name}-{version}-{release}.{a}.raw.xz" for a in arches}
        if task["state"] != TASK_STATES["CLOSED"]:
            missing = [a for a in arches if a not in self.images]
            if missing:
                raise ValueError(f"no demo image for arch(es) {missing}")
            files = {a: {names[a]: self.images[a]} for a in arches}
            self.hub.add_image_task(name, version, release, arches, files, task_id=task_id,
                                    target=target, scratch=bool(opts.get("scratch")),
                                    opts=opts)
            filled = True
        body = self.hub.task_state_change_body(task_id, old="OPEN", new="CLOSED")
        message = announce(body)
        return {"task_id": task_id, "filled": filled, "message_id": message.id,
                "topic": message.topic, "files": sorted(names.values())}


# make_images key suffix -> (cloud word of the file name, productmd type, format = suffix)
COMPOSE_KINDS = {"": ("", "raw-xz", "raw.xz"), "qcow2": ("Generic-", "qcow2", "qcow2"),
                 "vhd": ("Azure-", "vhd-compressed", "vhdfixed.xz"),
                 "gce": ("GCE-", "tar-gz", "tar.gz")}
# production composes only: Fedora-<release>-<YYYYMMDD>.<respin> (what a release candidate is)
COMPOSE_ID = re.compile(r"Fedora-(?P<release>\d{1,3})-(?P<date>\d{8})\.(?P<respin>\d{1,3})")


def compose(hub: KojiHub, images: dict[str, pathlib.Path], compose_id: str) -> dict[str, Any]:
    """Lay out production compose ``compose_id`` of the demo images and announce it FINISHED."""
    import productmd.images

    m = COMPOSE_ID.fullmatch(compose_id)
    if m is None:
        raise ValueError(f"{compose_id!r} is not a production compose id Fedora-NN-YYYYMMDD.N")
    release = m["release"]
    top = f"compose/{release}/{compose_id}/compose"
    meta = productmd.images.Images()
    meta.header.version = "1.2"
    meta.compose.id = compose_id
    meta.compose.type = "production"
    meta.compose.date = m["date"]
    meta.compose.respin = int(m["respin"])
    files = []
    version = f"{release}-{m['date']}.{m['respin']}"
    for key, source in sorted(images.items()):
        # the raw.xz as for EC2; the others as pungi names Fedora's Generic (OpenStack), Azure
        # and GCE images, with the productmd types of a Fedora 43 compose
        arch, _, kind = key.partition(".")
        word, itype, fmt = COMPOSE_KINDS[kind]
        filename = f"Fedora-Cloud-Base-{word}{version}.{arch}.{fmt}"
        path = f"Cloud/{arch}/images/{filename}"
        hub.add_file(f"{top}/{path}", source)
        image = productmd.images.Image(meta)
        image.path, image.arch, image.type, image.format = path, arch, itype, fmt
        image.subvariant, image.size, image.mtime = "Cloud_Base", source.stat().st_size, 0
        image.checksums = {"sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
        image.volume_id, image.implant_md5, image.bootable = None, None, False
        image.disc_number = image.disc_count = 1
        meta.add("Cloud", arch, image)
        files.append(filename)
        if not kind:  # one container image per arch
            files.append(_container_image(hub, meta, top, compose_id, arch))
    listing = io.StringIO()
    meta.dump(listing)
    hub.add_file(f"{top}/metadata/images.json", listing.getvalue().encode())
    location = f"{hub.topurl}/{top}"
    message = announce_compose({
        "status": "FINISHED", "compose_id": compose_id, "compose_type": "production",
        "compose_date": m["date"], "compose_respin": int(m["respin"]),
        "compose_label": f"RC-{m['date']}.{m['respin']}", "release_short": "Fedora",
        "release_name": "Fedora", "release_version": release, "release_type": "ga",
        "release_is_layered": False, "location": location})
    return {"compose_id": compose_id, "message_id": message.id, "topic": message.topic,
            "files": files}


def _container_image(hub: KojiHub, meta: Any, top: str, compose_id: str, arch: str) -> str:
    """The compose's Container_Base image of ``arch``: made once (the same bytes for the same
    compose id), served, and listed in images.json as pungi lists Fedora's."""
    import productmd.images

    from standins.container_archives import make_container_archive

    release, version = compose_id.split("-", 2)[1:]
    filename = f"Fedora-Container-Base-Generic-{release}-{version}.{arch}.oci.tar.xz"
    local = hub.workdir / "composes" / compose_id / filename
    archive = make_container_archive(local, arch, label=compose_id)
    path = f"Container/{arch}/images/{filename}"
    hub.add_file(f"{top}/{path}", local)
    image = productmd.images.Image(meta)
    image.path, image.arch, image.type, image.format = path, arch, "container", "tar.xz"
    image.subvariant, image.size, image.mtime = "Container_Base", archive.size, 0
    image.checksums = {"sha256": archive.sha256}
    image.volume_id, image.implant_md5, image.bootable = None, None, False
    image.disc_number = image.disc_count = 1
    meta.add("Container", arch, image)
    return filename


def announce_compose(body: dict[str, Any]) -> Any:
    """Publish ``pungi.compose.status.change`` as Pungi's fedora-messaging notifier does."""
    from fedora_messaging import api, message

    msg = message.Message(topic="pungi.compose.status.change", body=body)
    api.publish(msg, timeout=PUBLISH_TIMEOUT)
    return msg


def announce(body: dict[str, Any]) -> Any:
    """Publish ``buildsys.task.state.change`` as koji-fedoramessaging does (schema-validated)."""
    from fedora_messaging import api
    from koji_fedoramessaging_messages.task import TaskStateChangeV1

    message = TaskStateChangeV1(body=body)
    message.validate()
    api.publish(message, timeout=PUBLISH_TIMEOUT)
    return message


def control_handler(hub: KojiHub, builder: Builder) -> type[http.server.BaseHTTPRequestHandler]:
    class Control(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.info("control: " + format, *args)

        def _json(self, code: int, data: Any) -> None:
            raw = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                self._json(200, {"hub": hub.url, "topurl": hub.topurl, "ca": hub.ca_cert})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            parts = self.path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "compose":
                action = lambda: compose(hub, builder.images, parts[1])  # noqa: E731
            elif len(parts) == 2 and parts[0] == "finish" and parts[1].isdigit():
                action = lambda: builder.finish(int(parts[1]))  # noqa: E731
            else:
                self._json(404, {"error": "POST /finish/<task_id> or /compose/<compose_id>"})
                return
            try:
                with builder.lock:
                    self._json(200, action())
            except LookupError as exc:
                self._json(404, {"error": str(exc)})
            except ValueError as exc:
                self._json(400, {"error": str(exc)})
            except Exception as exc:  # the announcement failed: say so, keep serving
                log.exception("finishing task %s failed", parts[1])
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    return Control


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=pathlib.Path, required=True)
    parser.add_argument("--port", type=int, required=True, help="HTTPS hub + /kojifiles")
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--arches", default="x86_64,aarch64")
    parser.add_argument("--user", action="append", default=[],
                        help="extra Koji user holding the image permission (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(name)s] %(message)s")

    shutil.rmtree(args.workdir / "pki", ignore_errors=True)  # certs of a previous CA are void
    images = make_images(args.workdir / "images", args.arches.split(","))
    hub = KojiHub(tls=True, workdir=args.workdir)
    hub.stop()
    hub.port = args.port  # KojiHub binds an ephemeral port first; move it to the stack's port
    hub.start()
    for user in args.user:
        hub.add_user(user, perms=["image"])
    for user in hub.users:  # client certificates for every known user, ready for ssl_login
        hub.client_cert(user)
    builder = Builder(hub, images)
    control = http.server.ThreadingHTTPServer(("127.0.0.1", args.control_port),
                                              control_handler(hub, builder))
    control.daemon_threads = True

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        threading.Thread(target=control.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("Koji stand-in ready: hub %s, files %s, CA %s, control http://127.0.0.1:%d "
             "(koji %s)", hub.url, hub.topurl, hub.ca_cert, args.control_port, koji.__name__)
    try:
        control.serve_forever(poll_interval=0.2)
    finally:
        control.server_close()
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
