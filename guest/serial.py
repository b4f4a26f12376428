#!/usr/bin/python3
"""guest/serial.py: talk to the guest over its serial console, each wait with a deadline.

usage: serial.py [--timeout S] ACTION ...
  wait-log LOGFILE PREFIX   wait until a line of LOGFILE (QEMU's serial log) contains PREFIX; print the rest
                            of that line. For the boot, when nobody is connected to the socket yet.
  command SOCK TEXT PREFIX  send TEXT (one line, to the guest's init) and print the rest of the first line
                            that contains PREFIX, e.g. `command serial.sock start "@@READY "`.
  request SOCK JSON         send one request to the runtime (an "id" is added if missing) and print the JSON
                            of the answer line "@@ANSWER {...}" that carries the same id.
The socket (QEMU's chardev, server=on) takes one client at a time: connect, send, read, close. Output the
guest prints while nobody is connected is only in the log; that is fine, every reply we wait for is printed
after our line was sent, so after we connected. Exit status 0 on success, 1 on error or timeout.
"""
import json
import os
import socket
import sys
import time

ANSWER = "@@ANSWER "
EXITED = "@@INIT runtime exited"


class Timeout(Exception):
    pass


def lines_from_socket(path, send, deadline):
    """Connect, send `send`, then yield complete decoded lines until the deadline."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    while True:
        try:
            s.connect(path)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise Timeout(f"cannot connect to {path}") from None
            time.sleep(0.02)
    with s:
        s.sendall(send)
        buf = b""
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode("utf-8", "replace").rstrip("\r")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("timed out waiting for the guest")
            s.settimeout(left)
            try:
                data = s.recv(65536)
            except socket.timeout:
                raise Timeout("timed out waiting for the guest") from None
            if not data:
                raise Timeout("QEMU closed the serial socket")
            buf += data


def wait_log(path, prefix, deadline):
    pos, part = 0, b""
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
                pos += len(data)
        except FileNotFoundError:
            data = b""
        part += data
        *lines, part = part.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            i = line.find(prefix)
            if i >= 0:
                return line[i + len(prefix):].rstrip("\r")
        if time.monotonic() > deadline:
            raise Timeout(f"timed out waiting for {prefix!r} in {path}")
        time.sleep(0.05)


def main(argv):
    timeout = 60.0
    if len(argv) > 1 and argv[0] == "--timeout":
        timeout, argv = float(argv[1]), argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    deadline = time.monotonic() + timeout
    action = argv[0]
    if action == "wait-log":
        print(wait_log(argv[1], argv[2], deadline))
    elif action == "command":
        prefix = argv[3]
        for line in lines_from_socket(argv[1], argv[2].encode() + b"\n", deadline):
            i = line.find(prefix)
            if i >= 0:
                print(line[i + len(prefix):])
                break
    elif action == "request":
        req = json.loads(argv[2])
        if not isinstance(req, dict):
            raise ValueError("a request is a JSON object")
        req.setdefault("id", int.from_bytes(os.urandom(4), "little"))
        send = json.dumps(req, separators=(",", ":")).encode() + b"\n"
        for line in lines_from_socket(argv[1], send, deadline):
            if EXITED in line:   # e.g. killed by the guest's OOM killer: no answer will come
                raise Timeout(f"the runtime is gone: {line.strip()}")
            i = line.find(ANSWER)
            if i < 0:
                continue
            try:
                ans = json.loads(line[i + len(ANSWER):])
            except ValueError:
                continue        # a kernel message cut into the line; not ours to judge
            if isinstance(ans, dict) and ans.get("id") == req["id"]:
                print(json.dumps(ans, separators=(",", ":")))
                break
    else:
        print(f"serial.py: unknown action {action}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (Timeout, OSError, ValueError, IndexError) as e:
        print(f"serial.py: {e}", file=sys.stderr)
        sys.exit(1)
