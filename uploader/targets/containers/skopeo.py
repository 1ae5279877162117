"""skopeo, the one tool that talks to registries: inspect, copy, and the local OCI layout.

Every call is bounded (`--command-timeout` and a subprocess timeout a little longer), registry
calls retry `containers.retries` times inside skopeo, and each failure becomes one line: the
message of skopeo's final `level=fatal` line. A registry that cannot be read or written is a
RegistryError naming it (retryable: the other registries are unaffected); an archive skopeo
cannot read is BadInput.

`--insecure-policy`: the signature policy governs images pulled from registries; fedimg's
source is a local archive it verified against the compose's images.json, and a host's policy
file must not decide whether that can be pushed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
from pathlib import Path

from shared.errors import BadInput, ConversionNoSpace, ConversionTimeout, RegistryError
from uploader.model import Runner
from uploader.targets.containers.settings import RegistryConfig

log = logging.getLogger(__name__)

SKOPEO = "skopeo"
GRACE = 30  # seconds the subprocess timeout exceeds skopeo's own --command-timeout
_FATAL = re.compile(r'level=fatal msg="(?P<msg>(?:[^"\\]|\\.)*)"')
_NOT_THERE = ("manifest unknown", "name unknown", "not found")


def failure_text(stderr: bytes | str) -> str:
    """The one line that says why skopeo failed."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    fatal = list(_FATAL.finditer(stderr or ""))
    if fatal:
        return fatal[-1]["msg"].encode().decode("unicode_escape", errors="replace")
    lines = [line for line in (stderr or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error output"


@dataclasses.dataclass(frozen=True)
class LocalImage:
    """An archive copied into an OCI layout directory, read back."""

    layout: Path
    ref: str  # the layout's reference name of the image
    digest: str  # "sha256:..." of its manifest: the digest it has in every registry
    manifest: bytes
    config: dict


class Skopeo:
    """skopeo bound to a runner, timeouts, retries and a scratch directory."""

    def __init__(self, run: Runner, *, timeout: int, retries: int, tmpdir: Path) -> None:
        self.run = run
        self.timeout = timeout
        self.retries = retries
        self.tmpdir = tmpdir

    def _call(self, args: list[str]) -> subprocess.CompletedProcess:
        argv = [SKOPEO, "--insecure-policy", "--tmpdir", str(self.tmpdir),
                "--command-timeout", f"{self.timeout}s", *args]
        log.debug("running %s", " ".join(argv))
        # bytes, not text: a manifest's digest is that of its exact bytes
        return self.run(argv, capture_output=True, timeout=self.timeout + GRACE,
                        stdin=subprocess.DEVNULL)

    def _registry_call(self, registry: RegistryConfig, what: str,
                       args: list[str]) -> subprocess.CompletedProcess:
        try:
            return self._call(args)
        except subprocess.TimeoutExpired:
            raise RegistryError(f"{registry.name}: {what}: no answer within "
                                f"{self.timeout} s") from None
        except OSError as exc:  # skopeo missing or not executable: nothing can be pushed
            raise RegistryError(f"{registry.name}: {what}: cannot run skopeo: {exc}") from exc

    @staticmethod
    def _creds(registry: RegistryConfig, prefix: str = "") -> list[str]:
        args = [f"--{prefix}tls-verify={'true' if registry.tls_verify else 'false'}"]
        if registry.authfile:
            args += [f"--{prefix}authfile", registry.authfile]
        if registry.cert_dir:
            args += [f"--{prefix}cert-dir", registry.cert_dir]
        return args

    def inspect_raw(self, registry: RegistryConfig, ref: str, *, config: bool = False
                    ) -> bytes | None:
        """The raw manifest (or config) at `docker://ref`, None if there is none."""
        what = f"reading {ref}"
        args = ["inspect", "--raw", "--retry-times", str(self.retries),
                *self._creds(registry), f"docker://{ref}"]
        if config:
            args.insert(1, "--config")
        proc = self._registry_call(registry, what, args)
        if proc.returncode == 0:
            return proc.stdout
        reason = failure_text(proc.stderr)
        if any(word in reason.lower() for word in _NOT_THERE):
            return None
        raise RegistryError(f"{registry.name}: {what}: {reason}")

    def push(self, registry: RegistryConfig, layout: Path, ref_name: str, dest: str, *,
             index_only: bool = False) -> None:
        """Copy `oci:layout:ref_name` to `docker://dest`, keeping every digest as it is.

        `index_only` copies a manifest list alone: the images it names must be there already
        (the registry refuses it otherwise).
        """
        args = ["copy", "--preserve-digests", "--retry-times", str(self.retries),
                *self._creds(registry, "dest-")]
        if index_only:
            args += ["--multi-arch", "index-only"]
        what = f"pushing to {dest}"
        proc = self._registry_call(registry, what,
                                   [*args, f"oci:{layout}:{ref_name}", f"docker://{dest}"])
        if proc.returncode != 0:
            raise RegistryError(f"{registry.name}: {what}: {failure_text(proc.stderr)}")

    def to_layout(self, archive: Path, layout: Path, ref: str = "image") -> LocalImage:
        """Copy a container archive (OCI or docker-archive, compressed or not) into an OCI layout.

        The kind is told by the name (pungi's `.oci.tar.xz`) and, if skopeo cannot read it as
        that, tried as the other. A docker archive is converted to OCI manifests, so the images
        of one manifest list are all of one kind.
        """
        first = "oci-archive" if ".oci." in archive.name else "docker-archive"
        errors = []
        for transport in (first, *({"oci-archive", "docker-archive"} - {first})):
            try:
                proc = self._call(["copy", "--format", "oci", f"{transport}:{archive}",
                                   f"oci:{layout}:{ref}"])
            except subprocess.TimeoutExpired:
                raise ConversionTimeout(f"{archive.name}: unpacking took longer than "
                                        f"{self.timeout} s") from None
            if proc.returncode == 0:
                return read_layout(layout, ref)
            reason = failure_text(proc.stderr)
            if "no space left" in reason.lower():
                raise ConversionNoSpace(f"{archive.name}: {reason}")
            errors.append(f"as {transport}: {reason}")
        raise BadInput(f"{archive.name}: not a container image archive ({'; '.join(errors)})")


def read_layout(layout: Path, ref: str) -> LocalImage:
    """The manifest and config of image `ref` in an OCI layout skopeo wrote."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    for desc in index.get("manifests", []):
        if (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name") == ref:
            digest = desc["digest"]
            manifest = (blobs / digest.removeprefix("sha256:")).read_bytes()
            config_digest = json.loads(manifest)["config"]["digest"]
            config = json.loads((blobs / config_digest.removeprefix("sha256:")).read_bytes())
            return LocalImage(layout=layout, ref=ref, digest=digest, manifest=manifest,
                              config=config)
    raise BadInput(f"{layout}: skopeo wrote no image named {ref!r}")
