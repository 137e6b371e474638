#!/usr/bin/env bash
# Apicurio Registry through its Confluent API: register, same schema same id, a breaking change
# rejected with 409 under the global BACKWARD rule, a compatible one accepted; schemas survive
# kill/start; pause/resume and stop/start; the Toxiproxy route works.
source "$(dirname "$0")/lib.sh"
R="$LAB_REGISTRY_URL"
CT='Content-Type: application/vnd.schemaregistry.v1+json'
subject="stacktest-$RUN-value"
on_exit "curl -s -m 5 -X DELETE '$R/subjects/$subject'; curl -s -m 5 -X DELETE '$R/subjects/$subject?permanent=true'"
on_exit "'$STACK' registry start"
on_exit "'$STACK' registry resume"

avro() {  # avro FIELDS_JSON -> request body with an Avro record schema
  jq -cn --arg s "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"lab\",\"fields\":$1}" '{schema: $s}'
}
post() {  # post PATH BODY -> prints "HTTP_CODE BODY"
  local out code; out="$(mktemp)"
  code="$(curl -s -m 10 -o "$out" -w '%{http_code}' -X POST -H "$CT" --data "$2" "$R$1")"
  echo "$code $(cat "$out")"; rm -f "$out"
}
V1='[{"name":"id","type":"long"}]'
V2_BREAKING='[{"name":"id","type":"long"},{"name":"note","type":"string"}]'
V2_OK='[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]'
V3_BREAKING='[{"name":"id","type":"string"},{"name":"note","type":"string","default":""}]'   # long -> string

[ "$(curl -sf -m 5 "$R/config" | jq -r .compatibilityLevel)" = BACKWARD ] || fail "global compatibility is not BACKWARD"
ok "global compatibility: BACKWARD"

r="$(post "/subjects/$subject/versions" "$(avro "$V1")")"
[ "${r%% *}" = 200 ] || fail "register v1: $r"
id1="$(jq -r .id <<<"${r#* }")"
r="$(post "/subjects/$subject/versions" "$(avro "$V1")")"
[ "$(jq -r .id <<<"${r#* }")" = "$id1" ] || fail "re-registering the same schema gave another id: $r"
ok "registered v1 (id $id1); the same schema again gets the same id"

r="$(post "/subjects/$subject/versions" "$(avro "$V2_BREAKING")")"
[ "${r%% *}" = 409 ] || fail "a breaking schema (new field without default) was not rejected with 409: $r"
r="$(post "/compatibility/subjects/$subject/versions/latest" "$(avro "$V2_BREAKING")")"
[ "$(jq -r .is_compatible <<<"${r#* }")" = false ] || fail "compatibility check of the breaking schema: $r"
ok "breaking change rejected: HTTP 409, /compatibility says is_compatible=false"

r="$(post "/subjects/$subject/versions" "$(avro "$V2_OK")")"
[ "${r%% *}" = 200 ] || fail "a compatible schema (new field with default) was rejected: $r"
[ "$(curl -sf -m 5 "$R/subjects/$subject/versions" | jq -c .)" = '[1,2]' ] || fail "versions are not [1,2]"
ok "compatible change accepted as version 2"

curl -sf -m 5 "$LAB_REGISTRY_PROXIED_URL/subjects" | jq -e --arg s "$subject" 'index($s) != null' >/dev/null \
  || fail "subject not visible through the Toxiproxy route"
ok "Toxiproxy route $LAB_REGISTRY_PROXIED_URL works"

"$STACK" registry kill || fail "registry kill"
curl -s -m 3 -o /dev/null "$R/subjects" && fail "registry still answers after kill"
expect_status_names registry down
"$STACK" registry start || fail "registry start"
[ "$(curl -sf -m 5 "$R/subjects/$subject/versions" | jq -c .)" = '[1,2]' ] || fail "schemas lost across kill/start"
[ "$(curl -sf -m 5 "$R/config" | jq -r .compatibilityLevel)" = BACKWARD ] || fail "BACKWARD lost across kill/start"
r="$(post "/subjects/$subject/versions" "$(avro "$V3_BREAKING")")"
[ "${r%% *}" = 409 ] || fail "after restart a breaking schema (id long -> string) was not rejected: $r"
ok "kill/start: registry back, versions and the BACKWARD rule kept"

pid="$(part_pid registry)"
"$STACK" registry pause || fail "registry pause"
[ "$(proc_state "$pid")" = T ] || fail "registry not stopped"
code="$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$R/subjects" || true)"
[ "$code" = 000 ] || fail "paused registry answered HTTP $code"
"$STACK" registry resume || fail "registry resume"
curl -sf -m 5 -o /dev/null "$R/subjects" || fail "registry does not answer after resume"
ok "pause: requests time out; resume: answers again"

"$STACK" registry stop || fail "registry stop"
expect_status_names registry down
"$STACK" registry start || fail "registry start after stop"
[ "$(curl -sf -m 5 "$R/subjects/$subject/versions" | jq -c .)" = '[1,2]' ] || fail "schemas lost across stop/start"
expect_status_ok
ok "stop/start: versions kept"
