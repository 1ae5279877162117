"""A private RabbitMQ node for the tests that restart or reconfigure the broker.

Why private: RabbitMQ on 127.0.0.1:5672 is shared with other test runs and CI; restarting it or
changing its users and listeners would break them. This node has its own node name, AMQP port,
distribution port, epmd (on its own port through ERL_EPMD_PORT), Erlang cookie and mnesia
directory, all under a temporary directory, and runs in the foreground under ``ManagedProcess``,
so it is stopped by its PID. Its mnesia directory survives ``restart()``: durable queues and
persistent messages come back, as on a real restart.

It runs Debian's RabbitMQ 3.10 from /usr/lib/rabbitmq/bin/* directly (the /usr/sbin wrappers
switch to the rabbitmq user and its cookie). With ``tls`` it listens only for AMQPS, asks every
client for a certificate and logs users in by its CN (SASL EXTERNAL,
rabbitmq_auth_mechanism_ssl), as Fedora's broker does; ``ctl(...)`` runs rabbitmqctl on it.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import uuid
from collections.abc import Mapping

from standins.processes import ManagedProcess, free_port, wait_until

RABBIT_BIN = pathlib.Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 90.0  # seconds; a cold node takes ~4-6 s on an idle 2-core machine


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateRabbitMQ:
    """``start()``, ``stop()``, ``restart()``; ``amqp_url`` for pika / fedora-messaging."""

    def __init__(self, directory: pathlib.Path,
                 tls: Mapping[str, pathlib.Path] | None = None) -> None:
        """``tls``: {"cacertfile", "certfile", "keyfile"} of the server; None: plain AMQP."""
        self.dir = directory
        self.name = f"fedimg-e2e-{uuid.uuid4().hex[:8]}"
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        for sub in ("mnesia", "log", "home"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.tls = tls is not None
        if tls is None:
            listen = f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            plugins = "[]."
        else:
            listen = (f"listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{self.amqp_port}\n"
                      + "".join(f"ssl_options.{k} = {tls[k]}\n"
                                for k in ("cacertfile", "certfile", "keyfile"))
                      + "ssl_options.verify = verify_peer\n"
                      "ssl_options.fail_if_no_peer_cert = true\n"
                      "auth_mechanisms.1 = EXTERNAL\nssl_cert_login_from = common_name\n")
            plugins = "[rabbitmq_auth_mechanism_ssl]."
        (directory / "rabbitmq.conf").write_text(
            listen + "loopback_users.guest = true\nlog.file.level = info\n")
        (directory / "enabled_plugins").write_text(plugins + "\n")
        (directory / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(directory / "home"),  # the Erlang cookie lives here
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "rabbit.pid"),
            "RABBITMQ_NODENAME": f"{self.name}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "PATH": f"{RABBIT_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        self.epmd: ManagedProcess | None = None
        self.server: ManagedProcess | None = None
        self.starts = 0

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """rabbitmqctl on this node (output captured as text)."""
        return subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", f"{self.name}@localhost",
                               *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=check)

    def start(self) -> None:
        if self.epmd is None or not self.epmd.alive():
            self.epmd = ManagedProcess(
                "epmd", ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                self.dir / "epmd.log", env=self.env)
            wait_until(lambda: _port_open(self.epmd_port), 15, f"epmd on {self.epmd_port}")
        self.starts += 1
        self.server = ManagedProcess(
            "rabbitmq-server", [str(RABBIT_BIN / "rabbitmq-server")],
            self.dir / f"server-{self.starts}.log", env=self.env, cwd=self.dir)
        server = self.server

        def ready() -> bool:
            if not server.alive():
                raise RuntimeError(f"rabbitmq-server exited:\n{server.tail()}")
            return "Starting broker... completed" in server.output() and _port_open(self.amqp_port)

        try:
            wait_until(ready, START_TIMEOUT, f"private RabbitMQ on {self.amqp_port}", 0.1)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n--- rabbitmq-server ---\n{server.tail()}") from None

    def stop(self) -> None:
        """Stop the node gracefully (TERM; KILL after 60 s), leaving its data in place."""
        if self.server is not None:
            self.server.stop(timeout=60)
            wait_until(lambda: not _port_open(self.amqp_port), 30, "AMQP port to close")

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self.epmd is not None:
            self.epmd.stop()
