"""Serving replicas behind HAProxy on one machine, rolled out the way a Deployment does it.

    python deploy/rollout/rollout.py up        --dir D --model-uri URI [--replicas 3]
                                               [--port 8080] [-- SERVE ARGS]
    python deploy/rollout/rollout.py rollout   --dir D --model-uri URI
    python deploy/rollout/rollout.py undo      --dir D
    python deploy/rollout/rollout.py reconcile --dir D
    python deploy/rollout/rollout.py status    --dir D [--json]
    python deploy/rollout/rollout.py down      --dir D

``up`` starts HAProxy (``haproxy.cfg`` here) and ``--replicas`` ``conveyor serve``
processes of one revision (a model URI, such as ``models:/churn/4``), and adds each
replica to HAProxy once its ``/readyz`` answers. Anything after ``--`` goes to every
``conveyor serve`` of this deployment (``--tracking-uri``, ``--runtime``, ...).

``rollout`` moves every replica to a new revision with a surge of one and no replica
unavailable (maxSurge 1, maxUnavailable 0): start one new replica, wait for its
``/readyz``, add it to HAProxy and wait until HAProxy's own health check has it up, then
take one old replica out of rotation, wait for its in-flight requests, stop it with
SIGTERM (it drains, then exits) and delete it from HAProxy; repeat. A new replica that
exits or is not ready within ``--ready-timeout`` stops the rollout: it is stopped, it
never took traffic, and the old replicas keep serving. ``undo`` rolls back to the
revision before the last rollout, the same way (one command, also after a stopped one).

Each answer carries HAProxy's cookie ``conveyor_replica`` naming the replica that gave it;
``POST /feedback`` sent with that cookie reaches that replica, the only one that remembers
the prediction (``haproxy.cfg``). ``status --json`` shows each replica's cookie.

``reconcile`` is the ReplicaSet controller's part: a replica that died (SIGKILL, OOM) is
deleted from HAProxy and replaced by a new one of the current revision.

State (replicas, revisions, HAProxy's pid) is a JSON file in ``--dir``, with each
replica's log. Standard library only; needs ``haproxy`` (Debian package) on PATH and
Conveyor's ``conveyor`` command (default: beside this Python).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "haproxy.cfg"
BACKEND = "serve"
SERVER_CHECK = "check inter 500ms fall 2 rise 1"
UP = "2"  # srv_op_state of a server whose health check passes ("show servers state")
DEFAULT_READY_TIMEOUT_S = 300.0  # as the Deployment's progressDeadlineSeconds
DRAIN_TIMEOUT_S = 30.0  # most to wait for a replica's in-flight requests to finish
STOP_TIMEOUT_S = 60.0  # most to wait for a replica to exit after SIGTERM (then SIGKILL)


class RolloutError(Exception):
    """A step failed; the message says which and what is left as it was."""


def say(message: str) -> None:
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} {message}\n")
    sys.stdout.flush()


# -- state ---------------------------------------------------------------------------
@dataclass
class Replica:
    """One ``conveyor serve`` process and the revision it serves."""

    name: str
    port: int
    pid: int
    revision: str
    log: str


@dataclass
class Deployment:
    """What ``--dir``/state.json records between commands."""

    port: int
    serve_args: list[str]
    replicas_wanted: int
    revision: str
    history: list[str] = field(default_factory=list)  # earlier revisions, oldest first
    replicas: list[Replica] = field(default_factory=list)
    next_index: int = 1
    proxy_pid: int = 0
    status: str = "complete"

    @classmethod
    def load(cls, folder: Path) -> Deployment:
        path = folder / "state.json"
        if not path.is_file():
            raise RolloutError(f"no deployment in {folder} (run `up` first)")
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["replicas"] = [Replica(**r) for r in raw["replicas"]]
        return cls(**raw)

    def save(self, folder: Path) -> None:
        path = folder / "state.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)


# -- processes -----------------------------------------------------------------------
def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def reap(pid: int) -> None:
    """Collect a child's exit status so that it leaves no zombie (others: nothing to do)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def conveyor_command() -> str:
    beside = Path(sys.executable).with_name("conveyor")
    return os.environ.get("CONVEYOR_COMMAND", str(beside))


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1.0) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def tail(path: str, size: int = 1500) -> str:
    text = Path(path).read_text(encoding="utf-8", errors="replace") if Path(path).exists() else ""
    return text[-size:].strip()


# -- HAProxy -------------------------------------------------------------------------
class Proxy:
    """HAProxy's runtime API on its admin socket."""

    def __init__(self, folder: Path) -> None:
        self.socket = folder / "haproxy.sock"

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5.0)
            sock.connect(str(self.socket))
            sock.sendall(line.encode("ascii") + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace").strip()

    def add(self, replica: Replica) -> None:
        """Add the replica (in maintenance), set its persistence cookie, then enable it.

        HAProxy 2.6 takes no ``cookie`` on ``add server``: the backend's dynamic cookies
        (haproxy.cfg) give each server one from its address and port, and ``enable
        dynamic-cookie`` computes it for the servers added since. Without it, the answers
        of the replica would carry no cookie, and its feedback could not find it."""
        answer = self.command(
            f"add server {BACKEND}/{replica.name} 127.0.0.1:{replica.port} {SERVER_CHECK}"
        )
        if "registered" not in answer:
            raise RolloutError(f"HAProxy refused to add {replica.name}: {answer}")
        self.command(f"enable dynamic-cookie backend {BACKEND}")
        if not self.cookies().get(replica.name):
            raise RolloutError(f"HAProxy set no persistence cookie for {replica.name}")
        self.command(f"enable health {BACKEND}/{replica.name}")
        self.command(f"enable server {BACKEND}/{replica.name}")

    def states(self) -> dict[str, str]:
        """Each server's operational state (``UP`` = "2")."""
        lines = self.command(f"show servers state {BACKEND}").splitlines()
        states = {}
        for line in lines[2:]:
            fields = line.split()
            if len(fields) > 5:
                states[fields[3]] = fields[5]
        return states

    def servers(self) -> dict[str, dict[str, str]]:
        """Each server's row of ``show stat``, by name."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
        return {
            r["svname"]: r
            for r in rows
            if r.get("pxname") == BACKEND and r.get("svname") not in ("FRONTEND", "BACKEND")
        }

    def sessions(self, name: str) -> int:
        """Requests the server is handling now (``scur``)."""
        return int(self.servers().get(name, {}).get("scur") or 0)

    def cookies(self) -> dict[str, str]:
        """Each server's persistence cookie (the value of ``conveyor_replica``)."""
        return {name: row.get("cookie", "") for name, row in self.servers().items()}

    def wait_up(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.states().get(name) != UP:
            if time.monotonic() > deadline:
                raise RolloutError(f"HAProxy's health check did not pass for {name}")
            time.sleep(0.1)

    def take_out(self, name: str) -> None:
        """No new requests (drain: only feedback carrying its cookie), then wait for the
        ones in flight."""
        self.command(f"set server {BACKEND}/{name} state drain")
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.sessions(name) > 0 and time.monotonic() < deadline:
            time.sleep(0.05)

    def delete(self, name: str) -> None:
        """Maintenance, then delete (HAProxy deletes only once no connection uses it)."""
        if name not in self.states():
            return
        self.command(f"set server {BACKEND}/{name} state maint")
        self.command(f"shutdown sessions server {BACKEND}/{name}")
        started = time.monotonic()
        deadline = started + 10.0
        while "deleted" not in (answer := self.command(f"del server {BACKEND}/{name}")):
            if time.monotonic() > deadline:
                raise RolloutError(f"HAProxy did not delete {name}: {answer}")
            time.sleep(0.2)


def start_proxy(folder: Path, port: int) -> int:
    """HAProxy in the foreground of its own session, its log (abnormal requests) in the folder."""
    env = {
        **os.environ,
        "CONVEYOR_PROXY_BIND": f"127.0.0.1:{port}",
        "CONVEYOR_PROXY_SOCKET": str(folder / "haproxy.sock"),
    }
    log = folder / "haproxy.log"
    (folder / "haproxy.sock").unlink(missing_ok=True)  # a stale one from an earlier run
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(CONFIG)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10.0
    while not (folder / "haproxy.sock").exists():
        if process.poll() is not None:
            raise RolloutError(f"haproxy did not start:\n{tail(str(log))}")
        if time.monotonic() > deadline:
            raise RolloutError("haproxy started but its admin socket did not appear")
        time.sleep(0.05)
    return process.pid


# -- replicas ------------------------------------------------------------------------
def start_replica(folder: Path, deployment: Deployment, revision: str) -> Replica:
    name = f"serve-{deployment.next_index}"
    deployment.next_index += 1
    port = free_port()
    log = folder / f"{name}.log"
    command = [
        conveyor_command(),
        "serve",
        "--model-uri",
        revision,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *deployment.serve_args,
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    replica = Replica(name=name, port=port, pid=process.pid, revision=revision, log=str(log))
    say(f"started {name} ({revision}) on port {port}, pid {process.pid}")
    return replica


def wait_ready(replica: Replica, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready(replica.port):
        reap(replica.pid)
        if not alive(replica.pid):
            raise RolloutError(
                f"{replica.name} ({replica.revision}) exited before it was ready:\n"
                + tail(replica.log)
            )
        if time.monotonic() > deadline:
            raise RolloutError(
                f"{replica.name} ({replica.revision}) was not ready within {timeout:.0f} s:\n"
                + tail(replica.log)
            )
        time.sleep(0.2)


def wait_exit(replica: Replica) -> None:
    """Wait for a replica sent SIGTERM to drain and exit; SIGKILL if it takes too long."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while alive(replica.pid):
        reap(replica.pid)
        if time.monotonic() > deadline:
            os.kill(replica.pid, signal.SIGKILL)
        time.sleep(0.1)
    reap(replica.pid)


def stop_replica(replica: Replica) -> None:
    """SIGTERM (the server drains, then exits), and wait for it."""
    if alive(replica.pid):
        os.kill(replica.pid, signal.SIGTERM)
    wait_exit(replica)


def retire(proxy: Proxy, replica: Replica) -> None:
    """Out of rotation, in-flight requests answered, deleted from HAProxy, sent SIGTERM.

    As on Kubernetes, the rollout goes on while the process drains and exits (a terminating
    pod does not count against the surge); ``stop_replica`` waits for it later."""
    proxy.take_out(replica.name)
    proxy.delete(replica.name)
    if alive(replica.pid):
        os.kill(replica.pid, signal.SIGTERM)
    say(f"removed {replica.name} ({replica.revision}) from rotation; it drains and exits")


def surge(
    folder: Path, deployment: Deployment, proxy: Proxy, revision: str, timeout: float
) -> None:
    """One new replica of ``revision``, ready and in rotation (or stopped, and an error)."""
    replica = start_replica(folder, deployment, revision)
    try:
        wait_ready(replica, timeout)
        proxy.add(replica)
        proxy.wait_up(replica.name, timeout=30.0)
    except RolloutError:
        stop_replica(replica)
        proxy.delete(replica.name)
        raise
    deployment.replicas.append(replica)
    deployment.save(folder)
    say(f"{replica.name} is ready and in rotation")


def roll(folder: Path, deployment: Deployment, revision: str, timeout: float) -> None:
    """Replace every replica not at ``revision``: one new up, then one old out, repeat."""
    proxy = Proxy(folder)
    started = time.monotonic()
    retired: list[Replica] = []
    for old in [r for r in deployment.replicas if r.revision != revision]:
        try:
            surge(folder, deployment, proxy, revision, timeout)
        except RolloutError as exc:
            deployment.status = "stopped"
            deployment.save(folder)
            raise RolloutError(
                f"rollout to {revision} stopped: {exc}\n"
                f"The replicas in rotation keep serving. Roll back with: {sys.argv[0]} undo "
                f"--dir {folder}"
            ) from exc
        retire(proxy, old)
        deployment.replicas.remove(old)
        deployment.save(folder)
        retired.append(old)
    for old in retired:
        wait_exit(old)
    deployment.status = "complete"
    deployment.save(folder)
    say(f"rollout to {revision} complete in {time.monotonic() - started:.1f} s")


# -- commands ------------------------------------------------------------------------
def up(args: argparse.Namespace) -> None:
    folder: Path = args.dir
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "state.json").exists():
        raise RolloutError(f"{folder} already holds a deployment (`down` first)")
    deployment = Deployment(
        port=args.port,
        serve_args=list(args.serve_args),
        replicas_wanted=args.replicas,
        revision=args.model_uri,
    )
    deployment.proxy_pid = start_proxy(folder, args.port)
    deployment.save(folder)
    say(f"haproxy on http://127.0.0.1:{args.port} (pid {deployment.proxy_pid})")
    proxy = Proxy(folder)
    fresh = [start_replica(folder, deployment, args.model_uri) for _ in range(args.replicas)]
    deployment.replicas.extend(fresh)
    deployment.save(folder)
    try:
        for replica in fresh:
            wait_ready(replica, args.ready_timeout)
            proxy.add(replica)
            proxy.wait_up(replica.name, timeout=30.0)
            say(f"{replica.name} is ready and in rotation")
    except RolloutError as exc:
        raise RolloutError(f"{exc}\n`down --dir {folder}` stops what did start") from exc


def rollout(args: argparse.Namespace) -> None:
    deployment = Deployment.load(args.dir)
    if args.model_uri == deployment.revision and deployment.status == "complete":
        say(f"already at {args.model_uri}")
        return
    if deployment.status == "complete":  # a stopped rollout's revision is no undo target
        deployment.history.append(deployment.revision)
    deployment.revision = args.model_uri
    deployment.status = "progressing"
    deployment.save(args.dir)
    roll(args.dir, deployment, args.model_uri, args.ready_timeout)


def undo(args: argparse.Namespace) -> None:
    deployment = Deployment.load(args.dir)
    if not deployment.history:
        raise RolloutError("no earlier revision to roll back to")
    previous = deployment.history.pop()
    say(f"rolling back from {deployment.revision} to {previous}")
    deployment.revision = previous
    deployment.status = "progressing"
    deployment.save(args.dir)
    roll(args.dir, deployment, previous, args.ready_timeout)


def reconcile(args: argparse.Namespace) -> None:
    """Replace replicas that died; bring the count back to what ``up`` asked for."""
    deployment = Deployment.load(args.dir)
    proxy = Proxy(args.dir)
    for replica in list(deployment.replicas):
        if not alive(replica.pid):
            reap(replica.pid)
            proxy.delete(replica.name)
            deployment.replicas.remove(replica)
            deployment.save(args.dir)
            say(f"{replica.name} had exited: deleted from HAProxy")
    while len(deployment.replicas) < deployment.replicas_wanted:
        surge(args.dir, deployment, proxy, deployment.revision, args.ready_timeout)


def status(args: argparse.Namespace) -> None:
    deployment = Deployment.load(args.dir)
    proxy = Proxy(args.dir)
    running = alive(deployment.proxy_pid)
    states = proxy.states() if running else {}
    cookies = proxy.cookies() if running else {}
    rows = [
        {
            **asdict(r),
            "running": alive(r.pid),
            "in_rotation": states.get(r.name) == UP,
            "cookie": cookies.get(r.name, ""),
        }
        for r in deployment.replicas
    ]
    if args.json:
        report: dict[str, Any] = {**asdict(deployment), "replicas": rows}
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    sys.stdout.write(
        f"revision {deployment.revision} ({deployment.status}); proxy "
        f"http://127.0.0.1:{deployment.port}\n"
    )
    for row in rows:
        sys.stdout.write(
            f"  {row['name']:<10} {row['revision']:<28} port {row['port']:<6} "
            f"{'running' if row['running'] else 'exited':<8} "
            f"{'in rotation' if row['in_rotation'] else 'out of rotation'}\n"
        )


def down(args: argparse.Namespace) -> None:
    deployment = Deployment.load(args.dir)
    for replica in deployment.replicas:  # all drain at once
        if alive(replica.pid):
            os.kill(replica.pid, signal.SIGTERM)
    for replica in deployment.replicas:
        wait_exit(replica)
    if alive(deployment.proxy_pid):
        os.kill(deployment.proxy_pid, signal.SIGTERM)
    (args.dir / "state.json").unlink()
    say("replicas and haproxy stopped")


def parse(argv: list[str]) -> argparse.Namespace:
    serve_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, serve_args = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="rollout.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "rollout", "undo", "reconcile", "status", "down"):
        command = commands.add_parser(name)
        command.add_argument("--dir", type=Path, required=True, help="the deployment's folder")
        if name in ("up", "rollout", "undo", "reconcile"):
            command.add_argument(
                "--ready-timeout",
                type=float,
                default=DEFAULT_READY_TIMEOUT_S,
                help="seconds a new replica has to become ready",
            )
        if name in ("up", "rollout"):
            command.add_argument("--model-uri", required=True, help="the revision to serve")
        if name == "up":
            command.add_argument("--replicas", type=int, default=3)
            command.add_argument("--port", type=int, default=8080, help="HAProxy's port")
        if name == "status":
            command.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.serve_args = serve_args
    if args.command == "up" and args.replicas < 1:
        parser.error("--replicas: must be at least 1")
    args.dir = args.dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    actions = {
        "up": up,
        "rollout": rollout,
        "undo": undo,
        "reconcile": reconcile,
        "status": status,
        "down": down,
    }
    try:
        actions[args.command](args)
    except RolloutError as exc:
        sys.stderr.write(f"rollout: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
