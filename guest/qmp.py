#!/usr/bin/python3
"""guest/qmp.py: the few QMP conversations guest/vm.sh needs, each with a deadline (a wait never hangs).

usage: qmp.py [--timeout S] SOCK ACTION [ARG]
  save FILE       device-state snapshot: x-ignore-shared on, FILE handed to QEMU as an fd (getfd,
                  so no shell and no quoting), migrate fd:, wait for "completed"; the VM is then paused
                  (postmigrate). Prints query-migrate's final answer.
  load FILE       the restore side (QEMU started with -incoming defer): same capability, migrate-incoming
                  fd:, wait until query-status says running. Prints {"status", "ms"}.
  cont            resume a paused (e.g. postmigrate) VM and wait until it runs.
  balloon MIB     set the balloon target (guest memory size in MiB), wait until query-balloon reports it.
  status          print query-status.
  quit            ask QEMU to exit (returns once QEMU acknowledged; the caller waits for the pid).
Events QEMU sends in between are ignored. Exit status 0 on success, 1 on error or timeout.
"""
import array
import json
import socket
import sys
import time


class QmpError(Exception):
    pass


class Qmp:
    def __init__(self, path, deadline):
        self.deadline = deadline
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:   # the socket appears a moment after QEMU starts
            try:
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise QmpError(f"cannot connect to {path}")
                time.sleep(0.02)
        self.buf = b""
        self.recv()                      # the greeting
        self.call("qmp_capabilities")

    def recv(self):
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise QmpError("timed out waiting for QEMU")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise QmpError("timed out waiting for QEMU") from None
            if not data:
                raise QmpError("QEMU closed the QMP connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, cmd, fds=None, **args):
        msg = json.dumps({"execute": cmd, "arguments": args} if args else {"execute": cmd}).encode()
        if fds:   # SCM_RIGHTS travels with the command that consumes it (getfd)
            self.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            self.sock.sendall(msg)
        while True:
            r = self.recv()
            if "event" in r:
                continue
            if "error" in r:
                raise QmpError(f"{cmd}: {r['error'].get('desc', r['error'])}")
            return r.get("return")

    def poll(self, what, query, done):
        """Repeat query until done(answer) is true; the last answer. Fails at the deadline."""
        while True:
            r = self.call(query)
            if done(r):
                return r
            if time.monotonic() > self.deadline:
                raise QmpError(f"timed out waiting for {what}; last {query}: {json.dumps(r)}")
            time.sleep(0.01)

    def ignore_shared(self):
        # RAM is a shared file: with this capability it stays out of the stream (device state only).
        self.call("migrate-set-capabilities",
                  capabilities=[{"capability": "x-ignore-shared", "state": True}])

    def pass_file(self, name, path, mode):
        with open(path, mode) as f:
            self.call("getfd", fds=[f.fileno()], fdname=name)   # QEMU keeps its own duplicate


def main(argv):
    timeout = 60.0
    if len(argv) > 1 and argv[0] == "--timeout":
        timeout, argv = float(argv[1]), argv[2:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, action, rest = argv[0], argv[1], argv[2:]
    t0 = time.monotonic()
    q = Qmp(path, t0 + timeout)
    if action == "save":
        q.ignore_shared()
        q.pass_file("snapfile", rest[0], "wb")
        q.call("migrate", uri="fd:snapfile")
        r = q.poll("migration", "query-migrate", lambda r: r.get("status") in ("completed", "failed", "cancelled"))
        print(json.dumps(r))
        if r["status"] != "completed":
            raise QmpError(f"migration {r['status']}: {r.get('error-desc', '')}")
    elif action == "load":
        q.ignore_shared()
        q.pass_file("snapfile", rest[0], "rb")
        q.call("migrate-incoming", uri="fd:snapfile")
        r = q.poll("the VM to run", "query-status", lambda r: r["status"] in ("running", "internal-error"))
        if r["status"] != "running":
            raise QmpError(f"incoming migration left the VM {r['status']}")
        print(json.dumps({"status": r["status"], "ms": round((time.monotonic() - t0) * 1000, 1)}))
    elif action == "cont":
        q.call("cont")
        print(json.dumps(q.poll("the VM to run", "query-status", lambda r: r["status"] == "running")))
    elif action == "balloon":
        target = int(float(rest[0]) * (1 << 20))
        q.call("balloon", value=target)
        r = q.poll(f"balloon at {rest[0]} MiB", "query-balloon", lambda r: r["actual"] == target)
        print(json.dumps({"actualMiB": r["actual"] / (1 << 20), "ms": round((time.monotonic() - t0) * 1000, 1)}))
    elif action == "status":
        print(json.dumps(q.call("query-status")))
    elif action == "quit":
        q.call("quit")
    else:
        print(f"qmp.py: unknown action {action}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (QmpError, OSError, ValueError, IndexError) as e:
        print(f"qmp.py: {e}", file=sys.stderr)
        sys.exit(1)
