#!/usr/bin/env python3
"""labctl: Reliability Lab from a terminal or a CI pipeline, through the public HTTP API only.

  labctl.py run E-005 [--param events=1000] [--mode failure] [--repeat 3] [--keep]
                      [--timeout S] [--note TEXT] [--expect confirmed|refuted|inconclusive]
                      [--cancel-on-interrupt] [--detach] [--all-metrics] [--json] [--junit FILE]
  labctl.py watch RUN_ID [--expect ...]          follow a run already queued, same output and exit
  labctl.py runs [--experiment E-009] [--state S] [--verdict V] [--limit N] [--json]
  labctl.py report RUN_ID [--format markdown|junit|json] [-o FILE]
  labctl.py cancel RUN_ID

The server is LAB_URL (default http://127.0.0.1:8080); LAB_TOKEN, when set, is sent as
`Authorization: Bearer <token>`. Exit status of run/watch: 0 when the verdict is the one --expect
asks for (default confirmed; with --repeat N every repetition's), 1 when it is not, 2 on an error
(server unreachable, a request refused, bad arguments) or a run that did not complete (failed,
cancelled, interrupted) or was not followed to its end (Ctrl-C). Other commands: 0 or 2.

Ctrl-C (or SIGTERM) while following a run stops following and leaves the run going on the server
(the message says how to watch or cancel it); with --cancel-on-interrupt it asks the server to
cancel the run and keeps following until the run's cleanup is done (a second Ctrl-C stops
waiting). Standard library only.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2
VERDICTS = ("confirmed", "refuted", "inconclusive")
TERMINAL_STATES = ("completed", "failed", "cancelled", "interrupted")
DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """A failure explained in one line; the process exits 2 with it on stderr."""


class ApiError(CliError):
    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Pure helpers (unit-tested in tests/cli/test_labctl.py)
# --------------------------------------------------------------------------------------------

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def parse_param_args(items):
    """["events=1000", "dedup=none"] -> {"events": "1000", "dedup": "none"} (values as text)."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not _PARAM_NAME.match(name) or value == "":
            raise CliError(f"bad --param '{item}': expected NAME=VALUE, e.g. --param events=1000")
        if name in out:
            raise CliError(f"--param {name} is given twice")
        out[name] = value
    return out


def coerce_params(raw, parameters, experiment):
    """Types each value as the catalog declares it (integer, number, boolean, enum).

    Bounds and enum choices are left to the server, which names the field when one is off."""
    by_name = {p["name"]: p for p in parameters}
    out = {}
    for name, text in raw.items():
        spec = by_name.get(name)
        if spec is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise CliError(f"{experiment} has no parameter '{name}' (its parameters: {known})")
        kind = spec.get("type")
        try:
            if kind == "integer":
                value = int(text.replace("_", ""), 10)
            elif kind == "number":
                value = float(text)
                if value.is_integer() and re.fullmatch(r"[+-]?\d+", text.strip()):
                    value = int(text)
            elif kind == "boolean":
                low = text.strip().lower()
                if low in ("true", "1", "yes", "on"):
                    value = True
                elif low in ("false", "0", "no", "off"):
                    value = False
                else:
                    raise ValueError(text)
            else:
                value = text
        except ValueError:
            raise CliError(f"bad --param {name}={text}: {name} is {_article(kind)} {kind}") from None
        out[name] = value
    return out


def _article(word):
    return "an" if word and word[0] in "aeiou" else "a"


def parse_modes(items):
    """["failure", "a,b"] -> ["failure", "a", "b"] (order kept, duplicates dropped)."""
    out = []
    for item in items or []:
        for m in item.split(","):
            m = m.strip()
            if not m:
                raise CliError(f"bad --mode '{item}': expected a mode name, e.g. --mode failure")
            if m not in out:
                out.append(m)
    return out


_CRITERION = re.compile(
    r"^\s*(?P<mode>[\w-]+)\.(?P<metric>[\w.-]+)\s*(?P<op>>=|<=|==|>|<)\s*"
    r"(?:(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?:(?P<factor>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*[x×]\s*)?"
    r"(?P<rmode>[\w-]+)\.(?P<rmetric>[\w.-]+))\s*$")


def parse_criterion(text):
    """"success.lost == 0" / "failure.reads > 10 x success.reads" -> dict, or None."""
    m = _CRITERION.match(text)
    if not m:
        return None
    c = {"text": text.strip(), "mode": m["mode"], "metric": m["metric"], "op": m["op"]}
    if m["value"] is not None:
        c["value"] = float(m["value"])
    else:
        c["factor"] = float(m["factor"]) if m["factor"] else 1.0
        c["rhs_mode"], c["rhs_metric"] = m["rmode"], m["rmetric"]
    return c


def criterion_rhs_text(c):
    if "value" in c:
        return f"{c['op']} {format_number(c['value'])}"
    factor = "" if c["factor"] == 1 else f"{format_number(c['factor'])} x "
    return f"{c['op']} {factor}{c['rhs_mode']}.{c['rhs_metric']}"


def criterion_holds(c, evidence):
    """True/False as the server's rule would say on `evidence` ({mode: {metrics: {...}}}), None
    when a number is missing."""
    def lookup(mode, metric):
        v = ((evidence.get(mode) or {}).get("metrics") or {}).get(metric)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    lhs = lookup(c["mode"], c["metric"])
    if "value" in c:
        rhs = c["value"]
    else:
        r = lookup(c["rhs_mode"], c["rhs_metric"])
        rhs = None if r is None else r * c["factor"]
    if lhs is None or rhs is None:
        return None
    return {">": lhs > rhs, ">=": lhs >= rhs, "==": lhs == rhs, "<=": lhs <= rhs,
            "<": lhs < rhs}[c["op"]]


def format_number(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    if v is None:
        return "—"
    return str(v)


def format_table(headers, rows, aligns=None):
    """Plain text columns; `aligns` per column "<" or ">" (numbers right). Returns lines."""
    aligns = aligns or ["<"] * len(headers)
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        parts = [c.rjust(w) if a == ">" else c.ljust(w) for c, w, a in zip(row, widths, aligns)]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]


def mode_tables(run, criteria_texts, all_metrics=False, max_rows=12, check="✓", cross="✗"):
    """[(title, lines)] — one table per mode: the metrics the criteria reference first (with the
    criterion and whether it held), then the mode's other numbers. With repetitions, one value
    column per repetition."""
    criteria = [c for c in (parse_criterion(t) for t in criteria_texts) if c]
    reps = run.get("repetitions") or []
    evidences = [r.get("evidence") or {} for r in reps] if reps else [run.get("evidence") or {}]
    modes = []
    for ev in evidences:
        for m in ev:
            if m not in modes:
                modes.append(m)
    tables = []
    for mode in modes:
        names = []
        for ev in evidences:
            for n in ((ev.get(mode) or {}).get("metrics") or {}):
                if n not in names:
                    names.append(n)
        referenced = []
        for c in criteria:
            for m, n in ((c["mode"], c["metric"]), (c.get("rhs_mode"), c.get("rhs_metric"))):
                if m == mode and n and n not in referenced:
                    referenced.append(n)
        if not names:
            continue  # the mode measured nothing (cancelled, or failed before it could)
        rest = [n for n in sorted(names) if n not in referenced]
        shown_rest = rest if all_metrics else rest[:max(0, max_rows - len(referenced))]
        value_headers = ["value"] if len(evidences) == 1 else [f"#{i + 1}" for i in range(len(evidences))]
        rows = []
        for n in referenced + shown_rest:
            values = [format_number(((ev.get(mode) or {}).get("metrics") or {}).get(n))
                      for ev in evidences]
            mine = [c for c in criteria if c["mode"] == mode and c["metric"] == n]
            if mine:
                for i, c in enumerate(mine):
                    held = [criterion_holds(c, ev) for ev in evidences]
                    if len(held) == 1:
                        mark = {True: check, False: cross, None: "?"}[held[0]]
                    else:
                        mark = f"{sum(1 for h in held if h)}/{len(held)} {check if all(held) else cross}"
                    rows.append(([n] + values if i == 0 else [""] + [""] * len(values)) +
                                [criterion_rhs_text(c), mark])
            else:
                rows.append([n] + values + ["", ""])
        if not rows:
            continue
        lines = format_table(["metric"] + value_headers + ["criterion", "held"], rows,
                             ["<"] + [">"] * len(value_headers) + ["<", "<"])
        hidden = len(rest) - len(shown_rest)
        if hidden > 0:
            lines.append(f"(+{hidden} more numbers: --all-metrics shows them)")
        tables.append((mode, lines))
    return tables


def run_exit_code(run, expect):
    """(code, why): 0 verdict as expected (each repetition's), 1 not, 2 the run did not complete."""
    state = run.get("state")
    if state != "completed":
        detail = run.get("error") or run.get("verdict_reason") or ""
        return EXIT_ERROR, f"the run ended {state}" + (f": {detail}" if detail else "")
    reps = run.get("repetitions") or []
    verdicts = [r.get("verdict") for r in reps] if reps else [run.get("verdict")]
    if verdicts and all(v == expect for v in verdicts):
        return EXIT_OK, f"verdict {expect} as expected"
    if reps:
        n = sum(1 for v in verdicts if v == expect)
        return EXIT_MISMATCH, f"{n} of {len(verdicts)} repetitions {expect} (expected all)"
    return EXIT_MISMATCH, f"verdict {run.get('verdict')}, expected {expect}"


def split_step(message, modes):
    """"#2 failure: started" -> ("#2 failure", "started"); other lines -> ("", message)."""
    m = re.match(r"^((?:#\d+ )?([\w-]+)): (.*)$", message, re.S)
    if m and m.group(2) in modes:
        label, text = m.group(1), m.group(3)
        # Some runners say their mode themselves: "failure: failure: ..." reads once.
        if text.startswith(m.group(2) + ": "):
            text = text[len(m.group(2)) + 2:]
        return label, text
    return "", message


def sse_events(lines):
    """Server-Sent Events from an iterable of text lines: yields (event, data, id)."""
    event, data, eid = None, [], None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if data or event:
                yield event or "message", "\n".join(data), eid
            event, data, eid = None, [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            eid = value


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

class Client:
    def __init__(self, base_url, token, timeout=30.0):
        u = urllib.parse.urlsplit(base_url if "://" in base_url else "http://" + base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise CliError(f"LAB_URL '{base_url}' is not an http(s) URL like {DEFAULT_URL}")
        self.base = f"{u.scheme}://{u.netloc}{u.path.rstrip('/')}"
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.prefix = u.path.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _connection(self, timeout):
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)

    def open(self, method, path, body=None, headers=None, timeout=None):
        """Sends one request; returns (connection, response) with the body unread."""
        h = {"Accept": "application/json", "User-Agent": "labctl"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn = self._connection(timeout or self.timeout)
        try:
            conn.request(method, self.prefix + path, body=data, headers=h)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise CliError(f"cannot reach the server at {self.base}: {describe_os_error(e)} "
                           f"(is it up? ./lab up starts it; LAB_URL names another)") from None

    def call(self, method, path, body=None, headers=None, ok=(200,), raw=False, retries=3):
        for attempt in range(retries + 1):
            conn, resp = self.open(method, path, body, headers)
            try:
                payload = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise CliError(f"the server at {self.base} broke off the answer to {method} "
                               f"{path}: {describe_os_error(e)}") from None
            finally:
                conn.close()
            retry_after = resp.getheader("Retry-After")
            if resp.status == 429 and attempt < retries and retry_after and retry_after.isdigit() \
                    and int(retry_after) <= 10:
                time.sleep(int(retry_after) or 1)
                continue
            if resp.status not in ok:
                raise api_error(method, path, resp.status, resp.getheader("Content-Type") or "",
                                payload, retry_after)
            if raw:
                return payload, resp
            try:
                return json.loads(payload.decode("utf-8")) if payload else None
            except ValueError:
                raise CliError(f"{method} {path}: the server answered {resp.status} with a body "
                               f"that is not JSON") from None


def describe_os_error(e):
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    return str(e) or type(e).__name__


def api_error(method, path, status, content_type, payload, retry_after=None):
    title, detail, fields = "", "", []
    try:
        doc = json.loads(payload.decode("utf-8")) if payload else {}
        if isinstance(doc, dict):
            title = str(doc.get("title") or "")
            detail = str(doc.get("detail") or "")
            errs = doc.get("errors")
            if isinstance(errs, list):
                for e in errs:
                    if isinstance(e, dict):
                        fields.append(f"{e.get('field', '?')} {e.get('message', '')}".strip())
            elif isinstance(errs, dict):
                fields = [f"{k} {v}" for k, v in errs.items()]
    except ValueError:
        detail = payload.decode("utf-8", "replace").strip().splitlines()[0][:200] if payload else ""
    what = detail or title or http.client.responses.get(status, "error")
    msg = f"{what} ({status}{' ' + title if title and title != what else ''}; {method} {path})"
    if fields and not any(f in what for f in fields):
        msg += " — " + "; ".join(fields)
    if status == 401:
        msg += (" — LAB_TOKEN was refused" if os.environ.get("LAB_TOKEN")
                else " — set LAB_TOKEN to a token of this server")
    elif status == 403 and "token" not in msg.lower():
        msg += " — LAB_TOKEN's role may not do this (running and cancelling need operator)"
    if retry_after and status in (429, 503):
        msg += f"; retry after {retry_after} s"
    return ApiError(msg, status)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

class Style:
    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.color = self.tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.utf8 = enc in ("utf8", "utf_8")
        self.check, self.cross = ("✓", "✗") if self.utf8 else ("yes", "NO")

    def paint(self, text, code):
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text):
        return self.paint(text, "1")

    def dim(self, text):
        return self.paint(text, "2")

    def verdict(self, v):
        code = {"confirmed": "1;32", "refuted": "1;31", "inconclusive": "1;33"}.get(v, "1")
        return self.paint(v or "none", code)


class Live:
    """The run as it goes: one line per step; on a TTY also a progress bar redrawn in place."""

    def __init__(self, style, modes):
        self.s = style
        self.out = style.stream
        self.modes = set(modes)
        self.percent = 0.0
        self.label = ""
        self.state = ""
        self.bar_shown = False
        self.t0 = time.monotonic()
        self.lock = threading.RLock()
        self.stopped = False
        if self.s.tty:  # the elapsed time ticks on while a long step says nothing
            threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self):
        while True:
            time.sleep(0.5)
            with self.lock:
                if self.stopped:
                    return
                if self.bar_shown:
                    self._draw_bar()

    def _clear_bar(self):
        if self.bar_shown:
            self.out.write("\r\033[K")
            self.bar_shown = False

    def _draw_bar(self):
        if not self.s.tty:
            return
        cols = shutil.get_terminal_size((80, 24)).columns
        width = 24
        filled = int(round(width * max(0.0, min(100.0, self.percent)) / 100))
        full, empty = ("█", "░") if self.s.utf8 else ("#", "-")
        bar = full * filled + empty * (width - filled)
        text = f"[{bar}] {self.percent:5.1f}%  {time.monotonic() - self.t0:6.1f} s  "
        label = f"{self.state} · {self.label}" if self.label else self.state
        text += label
        if len(text) > cols - 1:
            text = text[:max(0, cols - 2)] + "…"
        self.out.write("\r\033[K" + text)
        self.out.flush()
        self.bar_shown = True

    def line(self, text):
        with self.lock:
            self._clear_bar()
            self.out.write(text + "\n")
            self._draw_bar()
            self.out.flush()

    def on_step(self, d):
        at = str(d.get("at") or "")
        clock = at[11:23] if len(at) >= 23 else at
        label, text = split_step(str(d.get("message") or ""), self.modes)
        self.line(f"{self.s.dim(clock)}  {label:<12} {text}")

    def on_progress(self, d):
        try:
            self.percent = float(d.get("percent") or 0)
        except (TypeError, ValueError):
            pass
        label, _ = split_step(str(d.get("step") or ""), self.modes)
        with self.lock:
            self.label = label or self.label
            self._draw_bar()

    def on_state(self, d):
        state = d.get("state") or ""
        if state and state != self.state:
            with self.lock:
                self.state = state  # shown in the bar; the step lines already say what happens
                self._draw_bar()

    def done(self):
        with self.lock:
            self.stopped = True
            self._clear_bar()
            self.out.flush()


def print_summary(run, experiment, style, all_metrics=False):
    out = style.stream
    w = out.write
    verdict = run.get("verdict")
    dur = run.get("duration_seconds")
    dur_text = f" in {format_number(round(float(dur), 2))} s" if isinstance(dur, (int, float)) else ""
    w("\n")
    w(f"{style.bold('run')} {run.get('id')}  {run.get('experiment')} "
      f"{experiment.get('title', '')}  — {run.get('state')}{dur_text}\n")
    w(f"{style.bold('verdict:')} {style.verdict(verdict)}\n")
    reason = run.get("verdict_reason") or ""
    if reason:
        parts = [p.strip() for p in reason.split("; ") if p.strip()]
        w(f"{style.bold('why:')}\n")
        for p in parts:
            w(f"  - {p}\n")
    if run.get("error") and run.get("error") != reason:
        w(f"{style.bold('error:')} {run.get('error')}\n")
    reps = run.get("repetitions") or []
    if reps:
        w(f"{style.bold('repetitions:')}\n")
        for r in reps:
            w(f"  #{int(r.get('index', 0)) + 1}  {style.verdict(r.get('verdict'))}  "
              f"{r.get('reason', '')}\n")
    tables = mode_tables(run, experiment.get("criteria") or [], all_metrics=all_metrics,
                         check=style.check, cross=style.cross)
    for mode, lines in tables:
        seconds = (run.get("mode_seconds") or {}).get(mode)
        extra = f"  ({format_number(round(float(seconds), 2))} s)" if isinstance(
            seconds, (int, float)) and not reps else ""
        w(f"\n{style.bold(mode)}{extra}\n")
        for ln in lines:
            w("  " + ln + "\n")
    out.flush()


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

class Interrupted(Exception):
    pass


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def follow(client, run_id, live, poll_interval=1.0):
    """Follows the run over SSE until it ends; returns the final run. Reconnects with
    Last-Event-ID when the stream drops, and polls GET /runs/{id} when the server has no stream
    to spare (503)."""
    last_id = None
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            conn, resp = client.open("GET", f"/runs/{run_id}/events", headers=headers, timeout=60)
        except CliError:
            failures += 1
            if failures > 10:
                raise
            time.sleep(min(5.0, 0.5 * failures))
            continue
        if resp.status == 503:
            resp.read()
            conn.close()
            return poll(client, run_id, live, last_id, poll_interval)
        if resp.status != 200:
            payload = resp.read()
            conn.close()
            raise api_error("GET", f"/runs/{run_id}/events", resp.status,
                            resp.getheader("Content-Type") or "", payload)
        failures = 0

        def lines():
            while True:
                raw = resp.readline()
                if not raw:
                    return
                yield raw.decode("utf-8", "replace")

        try:
            for event, data, eid in sse_events(lines()):
                if eid:
                    last_id = eid
                try:
                    payload = json.loads(data) if data else {}
                except ValueError:
                    payload = {}
                if event == "step":
                    live.on_step(payload)
                elif event == "progress":
                    live.on_progress(payload)
                elif event == "state":
                    live.on_state(payload)
                elif event == "end":
                    live.on_state(payload)
                    return payload if payload.get("id") else client.call("GET", f"/runs/{run_id}")
                elif event == "error":
                    raise CliError(f"the event stream of run {run_id} ended with an error: "
                                   f"{payload.get('detail', data)}")
        except (OSError, http.client.HTTPException):
            pass  # dropped: reconnect below
        finally:
            conn.close()
        # The stream ended without an "end" event: the run may have ended meanwhile.
        run = client.call("GET", f"/runs/{run_id}")
        if run.get("state") in TERMINAL_STATES:
            for step in run.get("steps") or []:
                if last_id is None or int(step.get("seq", 0)) > int(last_id):
                    live.on_step(step)
            return run
        time.sleep(0.5)


def poll(client, run_id, live, last_id, interval):
    last = int(last_id) if last_id and last_id.isdigit() else 0
    while True:
        run = client.call("GET", f"/runs/{run_id}")
        for step in run.get("steps") or []:
            if int(step.get("seq", 0)) > last:
                live.on_step(step)
                last = int(step.get("seq", 0))
        live.on_state({"state": run.get("state")})
        live.on_progress(run.get("progress") or {})
        if run.get("state") in TERMINAL_STATES:
            return run
        time.sleep(interval)


def follow_to_end(client, run_id, args, live):
    """Follows; on Ctrl-C either cancels (--cancel-on-interrupt) or leaves the run going."""
    try:
        return follow(client, run_id, live)
    except KeyboardInterrupt:
        live.done()
        if not getattr(args, "cancel_on_interrupt", False):
            err(f"stopped following; run {run_id} goes on on the server — "
                f"./lab watch {run_id} follows it again, ./lab cancel {run_id} cancels it")
            raise Interrupted() from None
        err(f"cancelling run {run_id} (its cleanup still runs; Ctrl-C again stops waiting)")
        try:
            client.call("POST", f"/runs/{run_id}/cancel", ok=(200, 202, 409))
            return follow(client, run_id, live)
        except KeyboardInterrupt:
            live.done()
            err(f"stopped waiting; run {run_id} was asked to cancel")
            raise Interrupted() from None


def finish_run(client, run, experiment, args):
    out_style = Style(sys.stderr if args.json else sys.stdout)
    if args.json:
        sys.stdout.write(json.dumps(run, indent=2) + "\n")
    else:
        print_summary(run, experiment, out_style, all_metrics=args.all_metrics)
    if getattr(args, "junit", None):
        body, _ = client.call("GET", f"/runs/{run['id']}/report?format=junit", raw=True)
        write_file(args.junit, body)
    code, why = run_exit_code(run, args.expect)
    mark = {EXIT_OK: "ok", EXIT_MISMATCH: "FAIL", EXIT_ERROR: "ERROR"}[code]
    out_style.stream.write(f"\n{out_style.bold(mark + ':')} {why} (exit {code})\n")
    out_style.stream.flush()
    return code


def write_file(path, body):
    try:
        with open(path, "wb") as f:
            f.write(body)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from None


def cmd_run(client, args):
    if args.repeat is not None and args.repeat < 1:
        raise CliError("--repeat must be 1 or more")
    if args.timeout is not None and args.timeout <= 0:
        raise CliError("--timeout must be a positive number of seconds")
    raw = parse_param_args(args.param)
    modes = parse_modes(args.mode)
    experiment = client.call("GET", f"/experiments/{urllib.parse.quote(args.experiment, safe='')}")
    if experiment.get("available") is False:
        raise CliError(f"{args.experiment} is in the catalog but its runner is not built yet")
    known_modes = [m.get("name") for m in experiment.get("modes") or []]
    for m in modes:
        if m not in known_modes:
            raise CliError(f"{args.experiment} has no mode '{m}' (its modes: "
                           f"{', '.join(known_modes)})")
    body = {}
    if raw:
        body["params"] = coerce_params(raw, experiment.get("parameters") or [], args.experiment)
    if modes:
        body["modes"] = modes
    if args.repeat is not None:
        body["repeat"] = args.repeat
    if args.keep:
        body["keep_artifacts"] = True
    if args.timeout is not None:
        body["timeout_seconds"] = args.timeout
    if args.note:
        body["note"] = args.note
    style = Style(sys.stderr if args.json else sys.stdout)
    run = client.call("POST", f"/experiments/{urllib.parse.quote(args.experiment, safe='')}/runs",
                      body=body, headers={"Idempotency-Key": "labctl-" + uuid.uuid4().hex},
                      ok=(200, 201, 202))
    run_id = run["id"]
    if args.detach:
        if args.json:
            sys.stdout.write(json.dumps(run, indent=2) + "\n")
        else:
            sys.stdout.write(run_id + "\n")
        return EXIT_OK
    style.stream.write(f"{style.bold('queued')} run {run_id}: {args.experiment} "
                       f"{experiment.get('title', '')}  ({client.base}/ui/ shows it too)\n")
    style.stream.flush()
    live = Live(style, known_modes)
    final = follow_to_end(client, run_id, args, live)
    live.done()
    return finish_run(client, final, experiment, args)


def cmd_watch(client, args):
    run = client.call("GET", f"/runs/{urllib.parse.quote(args.run_id, safe='')}")
    experiment = client.call("GET", f"/experiments/{run['experiment']}")
    style = Style(sys.stderr if args.json else sys.stdout)
    live = Live(style, [m.get("name") for m in experiment.get("modes") or []])
    final = follow_to_end(client, run["id"], args, live)
    live.done()
    return finish_run(client, final, experiment, args)


def cmd_cancel(client, args):
    rid = urllib.parse.quote(args.run_id, safe="")
    run = client.call("POST", f"/runs/{rid}/cancel", ok=(200, 202))
    sys.stdout.write(f"run {args.run_id}: cancel requested (state {run.get('state')}); its cleanup "
                     f"still runs\n")
    return EXIT_OK


def cmd_runs(client, args):
    if args.limit < 1:
        raise CliError("--limit must be 1 or more")
    query = {}
    for key in ("experiment", "state", "verdict", "since", "until"):
        value = getattr(args, key)
        if value:
            query[key] = value
    items, cursor = [], None
    while len(items) < args.limit:
        q = dict(query, limit=str(min(200, args.limit - len(items))))
        if cursor:
            q["cursor"] = cursor
        page = client.call("GET", "/runs?" + urllib.parse.urlencode(q))
        items += page.get("items") or []
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if args.json:
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
        return EXIT_OK
    style = Style(sys.stdout)
    if not items:
        sys.stdout.write("no runs" + (f" of {args.experiment}" if args.experiment else "") + "\n")
        return EXIT_OK
    rows = []
    for r in items:
        dur = r.get("duration_seconds")
        rows.append([r.get("id", ""), r.get("experiment", ""), r.get("state", ""),
                     r.get("verdict") or "—", str(r.get("created_at") or "")[:19].replace("T", " "),
                     format_number(round(float(dur), 1)) + " s" if isinstance(dur, (int, float))
                     and r.get("state") in TERMINAL_STATES else "",
                     str(r.get("note") or "")[:40]])
    lines = format_table(["id", "experiment", "state", "verdict", "created (UTC)", "took", "note"],
                         rows, ["<", "<", "<", "<", "<", ">", "<"])
    for i, ln in enumerate(lines):
        if i >= 2 and style.color:
            v = rows[i - 2][3]
            ln = ln.replace(f"  {v}  ", f"  {style.verdict(v)}  ", 1) if v in VERDICTS else ln
        sys.stdout.write(ln + "\n")
    if cursor:
        sys.stdout.write(f"(more: --limit {args.limit * 2})\n")
    return EXIT_OK


def cmd_report(client, args):
    rid = urllib.parse.quote(args.run_id, safe="")
    body, _ = client.call("GET", f"/runs/{rid}/report?format={args.format}", raw=True)
    if args.output and args.output != "-":
        write_file(args.output, body)
        sys.stderr.write(f"wrote the {args.format} report of run {args.run_id} to {args.output}\n")
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def err(text):
    sys.stdout.flush()
    prefix = "lab: " if not (sys.stderr.isatty() and not os.environ.get("NO_COLOR")) else \
        "\033[1mlab:\033[0m "
    sys.stderr.write(prefix + text + "\n")
    sys.stderr.flush()


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit status is 2 too; keep one line plus usage
        self.print_usage(sys.stderr)
        err(f"error: {message}")
        sys.exit(EXIT_ERROR)


def build_parser():
    p = Parser(prog="lab", description="Reliability Lab from the command line (LAB_URL, LAB_TOKEN).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def follow_opts(sp):
        sp.add_argument("--expect", choices=VERDICTS, default="confirmed",
                        help="the verdict that makes the exit status 0 (default confirmed)")
        sp.add_argument("--cancel-on-interrupt", action="store_true",
                        help="on Ctrl-C/SIGTERM cancel the run on the server (default: leave it)")
        sp.add_argument("--all-metrics", action="store_true",
                        help="every number of each mode in the tables, not only the key ones")
        sp.add_argument("--json", action="store_true",
                        help="print the final run as JSON on stdout (progress goes to stderr)")
        sp.add_argument("--junit", metavar="FILE", help="also write the run's JUnit report to FILE")

    r = sub.add_parser("run", help="queue a run, follow it live, print the verdict and numbers")
    r.add_argument("experiment", help="experiment id, e.g. E-005")
    r.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="a parameter (repeatable), e.g. --param events=1000")
    r.add_argument("-m", "--mode", action="append", metavar="MODE",
                   help="run only this mode (repeatable or comma-separated)")
    r.add_argument("--repeat", type=int, metavar="N", help="run N times; each must match --expect")
    r.add_argument("--keep", action="store_true", help="keep the run's artifacts on the stack")
    r.add_argument("--timeout", type=int, metavar="S", help="the run's timeout_seconds")
    r.add_argument("--note", help="a note stored with the run")
    r.add_argument("--detach", action="store_true", help="queue only: print the run id and exit 0")
    follow_opts(r)

    w = sub.add_parser("watch", help="follow a run already queued (same output and exit status)")
    w.add_argument("run_id")
    follow_opts(w)

    c = sub.add_parser("cancel", help="cancel a queued or running run")
    c.add_argument("run_id")

    h = sub.add_parser("runs", help="list the run history, newest first")
    h.add_argument("-e", "--experiment")
    h.add_argument("--state", choices=("queued", "running") + TERMINAL_STATES)
    h.add_argument("--verdict", choices=VERDICTS)
    h.add_argument("--since", metavar="TIME", help="RFC 3339 UTC, e.g. 2026-12-01T00:00:00Z")
    h.add_argument("--until", metavar="TIME")
    h.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    h.add_argument("--json", action="store_true", help="the runs as a JSON array")

    rp = sub.add_parser("report", help="write a run's report (markdown, junit or json)")
    rp.add_argument("run_id")
    rp.add_argument("-f", "--format", choices=("markdown", "junit", "json"), default="markdown")
    rp.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        client = Client(os.environ.get("LAB_URL") or DEFAULT_URL, os.environ.get("LAB_TOKEN") or None)
        handler = {"run": cmd_run, "watch": cmd_watch, "cancel": cmd_cancel, "runs": cmd_runs,
                   "report": cmd_report}[args.command]
        return handler(client, args)
    except Interrupted:
        return EXIT_ERROR
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_ERROR
    except CliError as e:
        err(f"error: {e}")
        return EXIT_ERROR
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_ERROR
    except Exception as e:  # a bug here must still not dump a traceback into a CI log
        err(f"error: unexpected {type(e).__name__}: {e} (LABCTL_DEBUG=1 shows the traceback)")
        if os.environ.get("LABCTL_DEBUG"):
            raise
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
