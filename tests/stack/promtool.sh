#!/usr/bin/env bash
# The alert rules parse (promtool check rules) and behave as their unit tests say (promtool test
# rules: for each alert a series that fires it and one that must not).
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool not installed (Debian package prometheus; infra/stack.sh install)"
promtool check rules "$ROOT"/infra/prometheus/rules/*.yml || fail "promtool check rules"
ok "rules parse"
promtool test rules "$ROOT"/infra/prometheus/tests/*.yml || fail "promtool test rules"
ok "rule unit tests pass"
