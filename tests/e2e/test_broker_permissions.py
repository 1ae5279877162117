"""Who may speak as fedimg, enforced by a real RabbitMQ: deploy/broker/setup-rabbitmq.sh on a
private node that, like Fedora's broker, accepts only AMQPS with a client certificate and logs
users in by its CN (SASL EXTERNAL). Every publish goes through the real fedora-messaging client
(`fedora-messaging --conf ... publish`), as fedimg's commands and any other application do.
"""

from __future__ import annotations

import ssl
import subprocess

import pika
import pytest
import tomli_w
from fedora_messaging.message import Message, dumps

from shared.messages import ImageAcceptedV1
from standins import REPO_ROOT
from standins.amqp import FEDORA_MESSAGING_CLI
from standins.koji_pki import KojiPKI
from tests.e2e.private_rabbitmq import RABBIT_BIN, PrivateRabbitMQ

SCRIPT = REPO_ROOT / "deploy" / "broker" / "setup-rabbitmq.sh"
VHOST = "/pubsub"
PREFIX = "org.fedoraproject.prod"
REFUSED = 121  # fedora-messaging publish: EREMOTEIO when the broker forbids the message


def _split(pem_path, directory, name):
    """cert.pem and key.pem from the PKI's combined file (fedora-messaging wants both)."""
    text = pem_path.read_text()
    cut = text.index("-----BEGIN PRIVATE KEY-----")
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    cert.write_text(text[:cut])
    key.write_text(text[cut:])
    return cert, key


class Broker:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.pki = KojiPKI(tmp_path, ca_name="fedimg stand-in RabbitMQ CA")
        cert, key = _split(self.pki.server_path, tmp_path, "server")
        self.node = PrivateRabbitMQ(tmp_path / "node", tls={
            "cacertfile": self.pki.ca_path, "certfile": cert, "keyfile": key})

    def setup(self, *args, check=True):
        env = {**self.node.env, "VHOST": VHOST, "PREFIX": PREFIX,
               "RABBITMQCTL": f"{RABBIT_BIN}/rabbitmqctl -n {self.node.name}@localhost"}
        return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True,
                              text=True, timeout=300, check=check)

    def client(self, user):
        """A publish-only fedora-messaging config authenticating as `user` by certificate."""
        cert, key = _split(self.pki.client_cert(user), self.dir, user)
        path = self.dir / f"fm-{user}.toml"
        path.write_text(tomli_w.dumps({
            "amqp_url": f"amqps://{user}:@127.0.0.1:{self.node.amqp_port}/%2Fpubsub",
            "publish_exchange": "amq.topic", "topic_prefix": PREFIX, "passive_declares": True,
            "tls": {"ca_cert": str(self.pki.ca_path), "keyfile": str(key),
                    "certfile": str(cert)},
            "client_properties": {"app": f"permission test ({user})"},
        }))
        return path

    def publish(self, user, message):
        """`fedora-messaging publish` as `user`: (exit code, output)."""
        file = self.dir / f"message-{message.id}.json"
        file.write_text(dumps([message]).strip() + "\n")
        argv = [str(FEDORA_MESSAGING_CLI), "--conf", str(self.client(user)), "publish", str(file)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr

    def connect(self, user, credentials=None):
        """A pika connection over TLS with `user`'s certificate (None: no certificate)."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_path))
        if user is not None:
            cert, key = _split(self.pki.client_cert(user), self.dir, user)
            context.load_cert_chain(str(cert), str(key))
        params = pika.ConnectionParameters(
            "127.0.0.1", self.node.amqp_port, VHOST, ssl_options=pika.SSLOptions(context),
            credentials=credentials or pika.credentials.ExternalCredentials(),
            connection_attempts=1, socket_timeout=10, blocked_connection_timeout=10)
        return pika.BlockingConnection(params)

    def send(self, user, topic):
        """Publish with pika as `user`, as fedora-messaging does (amq.topic, routing key = the
        prefixed topic, publisher confirms): None if the broker took it, else its refusal."""
        connection = self.connect(user)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish("amq.topic", topic, b"{}")
            return None
        except pika.exceptions.ChannelClosedByBroker as refused:
            return f"{refused.reply_code} {refused.reply_text}"
        finally:
            if connection.is_open:
                connection.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    made = Broker(tmp_path_factory.mktemp("broker"))
    made.node.start()
    try:
        made.setup("fedimg")
        made.setup("publisher", "koji", "buildsys")
        made.setup("announcer", "qe", "tested")
        yield made
    finally:
        made.node.close()


def _received(channel, queue):
    topics = []
    while True:
        method, _, _ = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return topics
        topics.append(method.routing_key)


@pytest.mark.slow
def test_fedimg_publishes_and_another_users_fedimg_message_is_refused_while_its_own_pass(
        broker):
    """With the real fedora-messaging client, as fedimg and Koji would publish."""
    witness = broker.connect("fedimg")  # fedimg may declare fedimg-* and bind to any topic
    channel = witness.channel()
    channel.queue_declare("fedimg-permission-witness", exclusive=True)
    channel.queue_bind("fedimg-permission-witness", "amq.topic", routing_key="#")

    accepted = ImageAcceptedV1.from_body(dict(ImageAcceptedV1.example))
    task = Message(topic="buildsys.task.state.change",
                   body={"id": 140000001, "new": "CLOSED", "method": "image"})
    assert broker.publish("fedimg", accepted)[0] == 0
    code, output = broker.publish("koji", accepted)  # a perfect forgery of fedimg's message
    assert code == REFUSED, output
    assert (f"ACCESS_REFUSED - access to topic '{PREFIX}.{accepted.topic}' in exchange "
            f"'amq.topic' in vhost '{VHOST}' refused for user 'koji'") in output
    assert broker.publish("koji", task)[0] == 0
    assert sorted(_received(channel, "fedimg-permission-witness")) == sorted([
        f"{PREFIX}.{accepted.topic}", f"{PREFIX}.{task.topic}"])
    witness.close()


@pytest.mark.slow
@pytest.mark.parametrize(("user", "topic", "allowed"), [
    ("fedimg", f"{PREFIX}.fedimg.build.started.v1.nightly", True),  # the trigger's topic
    ("fedimg", f"{PREFIX}.fedimg.image.failed.v1.aws.nightly.Cloud_Base.43.x86_64", True),
    ("fedimg", "fedimg.image.accepted.v1.x", True),  # a config without topic_prefix
    ("fedimg", f"{PREFIX}.buildsys.task.state.change", False),  # nor may fedimg speak as Koji
    ("fedimg", f"{PREFIX}.fedimg.image.tested.v1.x", False),  # only QE says what QE found
    ("koji", "fedimg.image.accepted.v1.x", False),
    ("koji", f"{PREFIX}.fedimg.build.started.v1.nightly", False),
    ("koji", f"{PREFIX}.buildsys.build.state.change", True),
    ("qe", f"{PREFIX}.fedimg.image.tested.v1.x", True),
    ("qe", f"{PREFIX}.fedimg.image.accepted.v1.x", False),
])
def test_each_user_writes_exactly_its_own_topics(broker, user, topic, allowed):
    refused = broker.send(user, topic)
    if allowed:
        assert refused is None
    else:
        assert refused == (f"403 ACCESS_REFUSED - access to topic '{topic}' in exchange "
                           f"'amq.topic' in vhost '{VHOST}' refused for user '{user}'")


@pytest.mark.slow
def test_certificates_are_the_only_way_in_and_check_names_users_without_topic_limits(broker):
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        broker.connect(None)  # no client certificate: the TLS handshake fails
    with pytest.raises(pika.exceptions.AMQPConnectionError):  # only EXTERNAL is offered
        broker.connect("fedimg", pika.PlainCredentials("fedimg", "guessed"))

    assert broker.setup("check").returncode == 0
    # a user made by hand, allowed to write but without a topic permission, can forge fedimg
    broker.node.ctl("add_user", "rogue", "unused")
    broker.node.ctl("clear_password", "rogue")
    broker.node.ctl("set_permissions", "-p", VHOST, "rogue", "^$", "^amq\\.topic$", "^$")
    found = broker.setup("check", check=False)
    assert found.returncode == 1 and "rogue" in found.stderr, found
    forged = f"{PREFIX}.fedimg.image.completed.v1.aws.nightly.Cloud_Base.43.x86_64"
    assert broker.send("rogue", forged) is None  # what `check` warns about
    broker.setup("publisher", "rogue", "rogue")  # an existing user keeps its vhost rights
    assert broker.setup("check").returncode == 0
    assert "refused for user 'rogue'" in broker.send("rogue", forged)
    assert broker.send("rogue", f"{PREFIX}.rogue.said") is None


def test_the_script_parses_and_explains_itself_without_a_command():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    bare = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert bare.returncode == 2 and "setup-rabbitmq.sh check" in bare.stderr
