"""TLS material for a Koji hub stand-in: a throwaway CA, the hub's server cert, client certs.

Other TLS stand-ins (the OCI registry) use the same CA helper under a CA name of their own.

Koji's ``sslLogin`` takes the user from the client certificate's CN, so each Koji user gets a
certificate of its own (``user-<name>.pem``: cert + key). The server certificate is valid for
127.0.0.1 and localhost. Everything is made fresh per hub and valid for 30 days.
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib


class KojiPKI:
    """A throwaway CA that signs the hub's server cert and per-user client certs."""

    def __init__(self, directory: pathlib.Path, ca_name: str = "fedimg stand-in Koji CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ser, self._ec, self._oid = (
            x509, hashes, serialization, ec, NameOID)
        self.dir = directory
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
        now = datetime.datetime.now(datetime.UTC)
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_path = directory / "ca.pem"
        self.ca_path.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))
        self.server_path = self._issue("127.0.0.1", server=True)

    def _issue(self, cn: str, server: bool = False) -> pathlib.Path:
        x509, ser, oid = self._x509, self._ser, self._oid
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(oid.COMMON_NAME, cn)]))
            .issuer_name(self.ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
        cert = builder.sign(self.ca_key, self._hashes.SHA256())
        path = self.dir / (("server" if server else f"user-{cn}") + ".pem")
        path.write_bytes(
            cert.public_bytes(ser.Encoding.PEM)
            + key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
        return path

    def client_cert(self, user: str) -> pathlib.Path:
        path = self.dir / f"user-{user}.pem"
        return path if path.exists() else self._issue(user)
