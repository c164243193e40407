#!/bin/bash
# RabbitMQ users of vmmig's services, each allowed only the exchanges, queues and
# routing keys it needs (README, "Trust"). Idempotent; run as root (rabbitmqctl).
#
#   rabbitmq-users.sh [options] setup             vhost, vmmig-conductor, vmmig-api
#   rabbitmq-users.sh [options] add-agent NAME    vmmig-agent-NAME: the agent process
#                                                 whose RPC server is NAME (its host, or
#                                                 the --name of an agents_bulk process)
#   rabbitmq-users.sh [options] remove            the vhost and every user of the prefix
#                                                 listed in the passwords file
# Options (defaults in brackets):
#   -v VHOST       [vmmig]
#   -u PREFIX      user names' prefix [vmmig-]
#   -e EXCHANGE    [DEFAULT] control_exchange of the services [vmmig]
#   -t PREFIX      topics PREFIX-conductor, PREFIX-conductor-report, PREFIX-agent, as
#                  [conductor] topic, [conductor] report_topic and [agent] topic [vmmig]
#   -n TOPIC       [oslo_messaging_notifications] topics [notifications]
#   -f FILE        passwords, "user password" a line; kept, or generated and added
#                  [/etc/vmmig/rabbitmq-passwords]
set -euo pipefail

VHOST=vmmig USERS=vmmig- EXCHANGE=vmmig TOPICS=vmmig NOTIFY=notifications
FILE=/etc/vmmig/rabbitmq-passwords
while getopts v:u:e:t:n:f: opt; do
  case $opt in
    v) VHOST=$OPTARG ;; u) USERS=$OPTARG ;; e) EXCHANGE=$OPTARG ;;
    t) TOPICS=$OPTARG ;; n) NOTIFY=$OPTARG ;; f) FILE=$OPTARG ;;
    *) sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit 2; }

CTL="rabbitmqctl -q -s"
# Names become regular expressions: their dots (and anything else) match themselves.
re() { printf '%s' "$1" | sed 's/[]\\*^$+?(){}|.[]/\\&/g'; }
E=$(re "$EXCHANGE") C=$(re "$TOPICS-conductor") R=$(re "$TOPICS-conductor-report")
A=$(re "$TOPICS-agent") N=$(re "$NOTIFY")

password() {  # the user's password from FILE, else a new one written there
  local user=$1 pw
  mkdir -p "$(dirname "$FILE")"
  touch "$FILE" && chmod 600 "$FILE"
  pw=$(awk -v u="$user" '$1 == u { print $2; exit }' "$FILE")
  if [ -z "$pw" ]; then
    pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    printf '%s %s\n' "$user" "$pw" >>"$FILE"
  fi
  printf '%s' "$pw"
}

user() {  # user configure write read topic-write topic-read
  local name=$1 pw
  pw=$(password "$name")
  if $CTL list_users | awk '{print $1}' | grep -qxF -- "$name"; then
    $CTL change_password "$name" "$pw" >/dev/null
  else
    $CTL add_user "$name" "$pw" >/dev/null
  fi
  $CTL set_permissions -p "$VHOST" "$name" "^($2)\$" "^($3)\$" "^($4)\$" >/dev/null
  $CTL set_topic_permissions -p "$VHOST" "$name" "$EXCHANGE" "^($5)\$" "^($6)\$" >/dev/null
}

# A topic's RPC server: queues TOPIC and TOPIC.SERVER bound to the control exchange,
# TOPIC_fanout_<unique> bound to exchange TOPIC_fanout. Resource permissions do not
# tell queues from exchanges: "T_fanout_.+" names the queues, "T_fanout" the exchange.
setup() {
  $CTL list_vhosts | grep -qxF -- "$VHOST" || $CTL add_vhost "$VHOST" >/dev/null
  # The conductor: serves both of its topics, calls the agents, answers calls
  # (amq.default), notifies (declares and binds the notification queues).
  user "${USERS}conductor" \
    "$E|$C|$C\\..+|${C}_fanout|${C}_fanout_.+|$R|$R\\..+|${R}_fanout|${R}_fanout_.+|reply_.+|$N\\..+" \
    "$E|amq\\.default|$C|$C\\..+|${C}_fanout_.+|$R|$R\\..+|${R}_fanout_.+|$N\\..+" \
    "$E|$C|$C\\..+|${C}_fanout|${C}_fanout_.+|$R|$R\\..+|${R}_fanout|${R}_fanout_.+|reply_.+" \
    "$A\\..+|$N\\..+" \
    "$C|$C\\..+|$R|$R\\..+|$N\\..+"
  # Operators' clients (the CLI, the REST API): call the operators' topic, read their
  # answers. No amq.default: they answer nobody.
  user "${USERS}api" "$E|reply_.+" "$E" "reply_.+" "$C|$C\\..+" ""
}

add_agent() {  # an agent process, by the name of its RPC server
  local S
  S=$(re "$1")
  # Serves its own queue (and the topic's shared queue and fanout, which oslo.messaging
  # declares for every server and vmmig sends nothing to), reports on the report
  # topic, answers calls (amq.default).
  user "${USERS}agent-$1" \
    "$E|$A|$A\\.$S|${A}_fanout|${A}_fanout_.+|reply_.+" \
    "$E|amq\\.default|$A|$A\\.$S|${A}_fanout_.+" \
    "$E|$A|$A\\.$S|${A}_fanout|${A}_fanout_.+|reply_.+" \
    "$R|$R\\..+" \
    "$A|$A\\.$S"
}

remove() {
  [ -f "$FILE" ] && awk -v p="$USERS" 'index($1, p) == 1 { print $1 }' "$FILE" |
    while read -r name; do $CTL delete_user "$name" </dev/null >/dev/null 2>&1 || true; done
  if $CTL list_vhosts | grep -qxF -- "$VHOST"; then $CTL delete_vhost "$VHOST" >/dev/null; fi
  if [ -f "$FILE" ]; then
    awk -v p="$USERS" 'index($1, p) != 1' "$FILE" >"$FILE.new" && mv "$FILE.new" "$FILE"
  fi
}

case $1 in
  setup) setup ;;
  add-agent) [ $# -eq 2 ] || { echo "add-agent NAME" >&2; exit 2; }; add_agent "$2" ;;
  remove) remove ;;
  *) echo "unknown command $1 (setup, add-agent NAME, remove)" >&2; exit 2 ;;
esac
