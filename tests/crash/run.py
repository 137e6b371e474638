#!/usr/bin/env python3
"""The crash stage: kill -9 the real server at random moments under a burst of POSTs, and check
that nothing it accepted is lost.

    python3 tests/crash/run.py      (tests/run-all.sh crash; needs build/reliability-lab, not the stack)

One data dir for the whole stage. Each round starts the server on it (a free loopback port, stack
endpoints on a closed port: tests/fuzz/closed-stack.sh, so the queued runs end at preflight and
never touch the shared stack), checks that every run accepted so far is there (GET /runs/{id} 200)
and that the audit chain verifies (GET /audit/verify), then fires POST /experiments/E-000/runs from
parallel clients and kill -9s the server at a random moment of the burst. A copy of the killed
server's SQLite files (lab.db, -wal, -shm) must pass PRAGMA integrity_check. After the last kill the
server is started once more for the final check.
LAB_CRASH_KILLS (default 20), LAB_CRASH_SEED (default: random, printed), LAB_CRASH_CLIENTS
(default 8). Ends with "crash: N passed, N failed".
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.path.join(ROOT, "build", "reliability-lab")
KILLS = int(os.environ.get("LAB_CRASH_KILLS", "20"))
CLIENTS = int(os.environ.get("LAB_CRASH_CLIENTS", "8"))
SEED = int(os.environ.get("LAB_CRASH_SEED", str(random.SystemRandom().randrange(1, 10**9))))

passed = 0
failed = 0


def ok(what):
    global passed
    passed += 1
    print(f"ok    {what}", flush=True)


def bad(what, *details):
    global failed
    failed += 1
    print(f"FAIL  {what}", flush=True)
    for d in details:
        print(f"      {d}", flush=True)


def request(port, method, path, body=None, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Server:
    def __init__(self, data, config, log):
        self.data, self.config, self.log = data, config, log
        self.proc = None
        self.port = None

    def start(self):
        port_file = os.path.join(self.data, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [BINARY, "--listen", "127.0.0.1:0", "--port-file", port_file, "--data-dir", self.data,
                 "--config", self.config, "--rate-limit", "0", "--queue-capacity", "1000000",
                 "--shutdown-timeout", "2", "--web-root", os.path.join(ROOT, "web"),
                 "--migrations", os.path.join(ROOT, "migrations")],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return True
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        return False

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()


def burst(port, stop, accepted, counts, lock):
    """POSTs until the server is gone (or stop is set); keeps the ids of the 202s."""
    while not stop.is_set():
        try:
            status, body = request(port, "POST", "/experiments/E-000/runs", body=b"{}", timeout=3.0)
        except (OSError, http.client.HTTPException):
            with lock:
                counts["errors"] += 1
            return
        with lock:
            counts["sent"] += 1
            if status == 202:
                accepted.append(json.loads(body)["id"])
            else:
                counts["other"] += 1


def integrity_of_copy(data, into):
    """PRAGMA integrity_check on a copy of the killed server's files (the original stays untouched
    for the server's own recovery at the next start)."""
    os.makedirs(into, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        src = os.path.join(data, "lab.db" + suffix)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(into, "lab.db" + suffix))
    out = subprocess.run(["sqlite3", os.path.join(into, "lab.db"), "PRAGMA integrity_check;"],
                         capture_output=True, text=True, timeout=60)
    shutil.rmtree(into, ignore_errors=True)
    return (out.stdout + out.stderr).strip()


def check_server(server, accepted, label):
    """Every accepted run answers 200, and the audit chain verifies."""
    missing = []
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)  # one kept-alive connection
    for run_id in accepted:
        try:
            conn.request("GET", f"/runs/{run_id}")
            r = conn.getresponse()
            r.read()
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            status = str(e)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        if status != 200:
            missing.append(f"{run_id}: {status}")
    conn.close()
    if missing:
        bad(f"{label}: {len(missing)} of {len(accepted)} accepted runs missing", *missing[:10])
    else:
        ok(f"{label}: all {len(accepted)} accepted runs present")
    try:
        status, body = request(server.port, "GET", "/audit/verify", timeout=30)
        verify = json.loads(body)
    except (OSError, http.client.HTTPException, ValueError) as e:
        status, verify = str(e), {}
    if status == 200 and verify.get("ok") is True:
        ok(f"{label}: audit chain verifies ({verify.get('entries')} entries)")
    else:
        bad(f"{label}: audit chain", f"{status} {verify}")
    return not missing


def main():
    if not os.access(BINARY, os.X_OK):
        bad(f"{BINARY} is missing (build it first)")
        return finish()
    if shutil.which("sqlite3") is None:
        bad("the sqlite3 command line is missing (apt-get install sqlite3)")
        return finish()
    rng = random.Random(SEED)
    tmp = tempfile.mkdtemp(prefix="lab-crash-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    config = os.path.join(tmp, "config.json")
    made = subprocess.run(["bash", "-c", f'source "{ROOT}/tests/fuzz/closed-stack.sh" && closed_stack_config "{config}"'])
    if made.returncode != 0:
        bad("closed stack config")
        return finish()
    log = os.path.join(tmp, "server.log")
    server = Server(data, config, log)
    print(f"crash: {KILLS} kills, {CLIENTS} clients, seed {SEED} (LAB_CRASH_SEED), data {data}", flush=True)
    accepted = []
    totals = {"sent": 0, "errors": 0, "other": 0}
    delays = []
    kills = 0
    t0 = time.monotonic()
    try:
        for round_no in range(1, KILLS + 1):
            if not server.start():
                bad(f"round {round_no}: the server did not start", *open(log, errors="replace").read().splitlines()[-20:])
                break
            if accepted:
                check_server(server, accepted, f"round {round_no} after restart")
            stop = threading.Event()
            lock = threading.Lock()
            got = []
            counts = {"sent": 0, "errors": 0, "other": 0}
            threads = [threading.Thread(target=burst, args=(server.port, stop, got, counts, lock))
                       for _ in range(CLIENTS)]
            for t in threads:
                t.start()
            delay = rng.uniform(0.05, 0.6)
            delays.append(delay)
            time.sleep(delay)
            server.kill9()
            kills += 1
            stop.set()
            for t in threads:
                t.join(timeout=10)
            with lock:
                accepted.extend(got)
                for k in totals:
                    totals[k] += counts[k]
            check = integrity_of_copy(data, os.path.join(tmp, "copy"))
            if check == "ok":
                ok(f"round {round_no}: kill -9 after {delay * 1000:.0f} ms, {len(got)} accepted "
                   f"({counts['sent']} answered), integrity_check ok")
            else:
                bad(f"round {round_no}: integrity_check after kill -9", check[:2000])
        if kills == KILLS:
            if server.start():
                present = check_server(server, accepted, "final restart")
                try:
                    status, body = request(server.port, "GET", "/runs?experiment=E-000&limit=1")
                except (OSError, http.client.HTTPException) as e:
                    status = str(e)
                if status == 200:
                    ok("final restart: the run list answers")
                else:
                    bad("final restart: GET /runs", status)
                server.stop()
                print(f"figures: {kills} kills (delays {min(delays) * 1000:.0f}..{max(delays) * 1000:.0f} ms), "
                      f"{totals['sent']} POSTs answered ({totals['other']} not 202), "
                      f"{totals['errors']} cut off by a kill, runs accepted {len(accepted)}, "
                      f"found after restart {len(accepted) if present else 'fewer (see above)'}, "
                      f"{time.monotonic() - t0:.0f} s", flush=True)
            else:
                bad("final restart: the server did not start", *open(log, errors="replace").read().splitlines()[-20:])
        if kills < KILLS:
            bad(f"only {kills} of {KILLS} kills done")
        elif len(accepted) == 0:
            bad("no POST was accepted in any round: the bursts tested nothing")
    finally:
        server.kill9()
        if failed and os.environ.get("LAB_CRASH_KEEP") == "1":
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return finish()


def finish():
    print(f"crash: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
