#!/bin/bash
# Broker side of "who may speak as fedimg": RabbitMQ users that log in only with a TLS client
# certificate (rabbitmq_auth_mechanism_ssl, SASL EXTERNAL, user = the certificate's CN), their
# vhost permissions, and topic permissions on the topic exchange, so that only the fedimg user
# can publish fedimg's topics. Run by the broker's admins (rabbitmqctl needs the node's cookie);
# safe to run again.
#
#   setup-rabbitmq.sh fedimg [USER]          the fedimg user (default "fedimg"): the uploader
#                                            services, fedimg-build and fedimg-upload
#   setup-rabbitmq.sh announcer USER KIND    a release-engineering (KIND=promoted) or QE
#                                            (KIND=tested) user of fedimg-announce
#   setup-rabbitmq.sh publisher USER WORD..  any other application that publishes: it may write
#                                            only <prefix>.WORD.* (e.g. "publisher koji buildsys");
#                                            an existing user keeps its vhost permissions, a new
#                                            one is made a certificate user who may only publish
#   setup-rabbitmq.sh check                  exit 1, naming them, if users may write to the
#                                            vhost without a topic permission on the exchange
#
# Why every publisher needs a topic permission: RabbitMQ checks topic permissions only for users
# that have one on the exchange. A user with none may publish ANY routing key, fedimg's included.
# fedora-messaging publishes to amq.topic with the routing key = <topic_prefix>.<topic>, so the
# write regex of a topic permission is exactly the set of topics a user may send.
#
# Environment: RABBITMQCTL (default rabbitmqctl), VHOST (default /pubsub), EXCHANGE (default
# amq.topic), PREFIX (default org.fedoraproject.prod). The broker itself needs (rabbitmq.conf):
#   listeners.ssl.default = 5671            ssl_options.verify = verify_peer
#   ssl_options.cacertfile/certfile/keyfile ssl_options.fail_if_no_peer_cert = true
#   auth_mechanisms.1 = EXTERNAL            ssl_cert_login_from = common_name
# and the plugin: rabbitmq-plugins enable rabbitmq_auth_mechanism_ssl
set -euo pipefail

RABBITMQCTL=${RABBITMQCTL:-rabbitmqctl}
VHOST=${VHOST:-/pubsub}
EXCHANGE=${EXCHANGE:-amq.topic}
PREFIX=${PREFIX:-org.fedoraproject.prod}

ctl() { $RABBITMQCTL "$@"; }
regex_quote() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }

P="^($(regex_quote "$PREFIX")\\.)?"
X="^$(regex_quote "$EXCHANGE")\$"

# A user who can log in only with a certificate: the random password is cleared at once.
cert_user() {
    local user=$1
    if ! ctl list_users --silent | cut -f1 | grep -qxF "$user"; then
        ctl add_user "$user" "$(head -c 32 /dev/urandom | base64)" >/dev/null
    fi
    ctl clear_password "$user" >/dev/null
}

ensure_vhost() {
    ctl list_vhosts --silent | grep -qxF "$VHOST" || ctl add_vhost "$VHOST" >/dev/null
}

case "${1:-}" in
fedimg)
    user=${2:-fedimg}
    ensure_vhost; cert_user "$user"
    # its own queues (fedimg-aws, fedimg-downloads, ...) and the exchange it declares and binds
    own="^($(regex_quote "$EXCHANGE")|fedimg-.*)\$"
    ctl set_permissions -p "$VHOST" "$user" "$own" "$own" "$own" >/dev/null
    # writes fedimg's topics except those of the announcers; binds to (reads) any topic
    ctl set_topic_permissions -p "$VHOST" "$user" "$EXCHANGE" \
        "${P}fedimg\\.(?!image\\.(promoted|tested)\\.)" ".*" >/dev/null
    ;;
announcer)
    user=${2:?announcer USER KIND}; kind=${3:?announcer USER promoted|tested}
    case "$kind" in promoted|tested) ;; *) echo "KIND is promoted or tested" >&2; exit 2;; esac
    ensure_vhost; cert_user "$user"
    ctl set_permissions -p "$VHOST" "$user" '^$' "$X" '^$' >/dev/null
    ctl set_topic_permissions -p "$VHOST" "$user" "$EXCHANGE" \
        "${P}fedimg\\.image\\.${kind}\\.v1\\." '^$' >/dev/null
    ;;
publisher)
    user=${2:?publisher USER WORD...}; shift 2
    [ $# -gt 0 ] || { echo "name at least one topic word (e.g. buildsys)" >&2; exit 2; }
    words=$(for w in "$@"; do regex_quote "$w"; echo; done | paste -sd'|')
    ensure_vhost
    if ! ctl list_users --silent | cut -f1 | grep -qxF "$user"; then
        cert_user "$user"
        ctl set_permissions -p "$VHOST" "$user" '^$' "$X" '^$' >/dev/null
    fi
    ctl set_topic_permissions -p "$VHOST" "$user" "$EXCHANGE" "${P}(${words})\\." '^$' >/dev/null
    ;;
check)
    # users with a write permission on the vhost, minus those with a topic permission on EXCHANGE
    writers=$(ctl list_permissions -p "$VHOST" --silent | awk -F'\t' '$3 != "" && $3 != "^$" {print $1}')
    limited=$(ctl list_topic_permissions -p "$VHOST" --silent | awk -F'\t' -v x="$EXCHANGE" '$2 == x {print $1}')
    unlimited=$(comm -23 <(sort -u <<<"$writers") <(sort -u <<<"$limited") | grep -v '^$' || true)
    if [ -n "$unlimited" ]; then
        echo "may publish any topic on $EXCHANGE in $VHOST (no topic permission):" $unlimited >&2
        exit 1
    fi
    echo "every user who may write to $VHOST has a topic permission on $EXCHANGE"
    ;;
*)
    sed -n '2,30p' "$0" >&2
    exit 2
    ;;
esac
