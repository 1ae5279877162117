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
  only announces again: that is how the demo shows that a repeated message changes nothing.

Composes live on the same file server, as Fedora's do on kojipkgs: ``POST /compose/<compose_id>``
writes a compose holding one small real container image per arch (OCI archives made by
standins.container_archives) with its images.json below ``<topurl>/compose/<release>/<id>/``, and
announces ``pungi.compose.status.change`` (status FINISHED) as Pungi does; calling it again only
announces again.

The hub keeps its state in memory, so the stack treats a restart of this process as a new stack.
The PKI (CA, server cert, client certs) is made fresh at every start under ``<workdir>/pki``:
``ca.pem`` and ``user-<name>.pem`` (cert + key, CN = the Koji user).

Control API (127.0.0.1 only): ``GET /health`` -> {"hub": url, "topurl": ..., "ca": ...};
``POST /finish/<task_id>`` -> {"task_id", "filled", "message_id", "topic", "files"};
``POST /compose/<compose_id>`` -> {"compose_id", "message_id", "topic", "files"}.
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import pathlib
import re
import shutil
import signal
import sys
import threading
from typing import Any

import koji

from standins.disk_images import MiB, make_disk_image, make_xz_image
from standins.koji_hub import TASK_STATES, KojiHub

log = logging.getLogger("koji-standin")
PUBLISH_TIMEOUT = 30  # seconds for the broker to confirm the announcement
IMAGE_SIZE = 64 * MiB  # apparent size of the demo disk images (sparse)
IMAGE_DATA_MIB = 4  # data inside their ext4 root


def make_images(directory: pathlib.Path, arches: list[str]) -> dict[str, pathlib.Path]:
    """One .raw.xz per arch (different seed each), cached across restarts: same bytes anyway."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for n, arch in enumerate(arches):
        xz = directory / f"disk-{arch}.raw.xz"
        if not xz.exists():
            raw = make_disk_image(directory / f"disk-{arch}.raw", size=IMAGE_SIZE,
                                  data_mib=IMAGE_DATA_MIB, seed=n)
            make_xz_image(raw, xz)  # written to a .part file and renamed: never half there
            raw.path.unlink()
        out[arch] = xz
    return out


class Builder:
    """Finishes image tasks on the hub and announces them, one at a time."""

    def __init__(self, hub: KojiHub, images: dict[str, pathlib.Path]) -> None:
        self.hub = hub
        self.images = images
        self._lock = threading.Lock()

    def finish(self, task_id: int) -> dict[str, Any]:
        """Fill (once) and close ``task_id``, then announce its completion on the bus."""
        with self._lock:
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


class Composer:
    """Serves composes of container images and announces them, one at a time."""

    def __init__(self, hub: KojiHub, directory: pathlib.Path, arches: list[str]) -> None:
        self.hub = hub
        self.directory = directory
        self.arches = arches
        self._lock = threading.Lock()

    def compose(self, compose_id: str) -> dict[str, Any]:
        from standins.container_archives import compose_images_json, make_container_archive

        m = re.fullmatch(r"Fedora-(\d{1,3}|Rawhide)-(\d{8})(?:\.n)?\.(\d+)", compose_id)
        if m is None:
            raise ValueError(f"{compose_id!r} is not a Fedora compose id")
        release, version = m[1], compose_id.split("-", 2)[2]
        with self._lock:
            archives = {arch: make_container_archive(
                self.directory / compose_id / f"{arch}.oci.tar.xz", arch, label=compose_id)
                for arch in self.arches}
            doc, files = compose_images_json(
                compose_id, archives, image_name=f"Fedora-Container-Base-Generic-{release}-"
                f"{version}", compose_type="nightly" if ".n." in compose_id else "production")
            base = f"compose/{release.lower()}/{compose_id}"
            for path, local in files.items():
                self.hub.add_file(f"{base}/compose/{path}", local)
            self.hub.add_file(f"{base}/compose/metadata/images.json", json.dumps(doc).encode())
        message = announce_compose({"compose_id": compose_id, "status": "FINISHED",
                                    "location": f"{self.hub.topurl}/{base}/compose"})
        return {"compose_id": compose_id, "message_id": message.id, "topic": message.topic,
                "files": sorted(p.rsplit("/", 1)[1] for p in files)}


def announce_compose(body: dict[str, Any]) -> Any:
    """Publish ``pungi.compose.status.change`` with Pungi's body fields (compose_id, status,
    location); fedora-messaging's base schema, as Pungi's own messages have no schema package."""
    from fedora_messaging import api, message

    msg = message.Message(topic="pungi.compose.status.change", body=body)
    msg.validate()
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


def control_handler(hub: KojiHub, builder: Builder,
                    composer: Composer) -> type[http.server.BaseHTTPRequestHandler]:
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
            if len(parts) != 2 or not ((parts[0] == "finish" and parts[1].isdigit())
                                       or parts[0] == "compose"):
                self._json(404, {"error": "POST /finish/<task_id> or /compose/<compose_id>"})
                return
            try:
                if parts[0] == "compose":
                    self._json(200, composer.compose(parts[1]))
                else:
                    self._json(200, builder.finish(int(parts[1])))
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
    composer = Composer(hub, args.workdir / "composes", args.arches.split(","))
    control = http.server.ThreadingHTTPServer(("127.0.0.1", args.control_port),
                                              control_handler(hub, builder, composer))
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
