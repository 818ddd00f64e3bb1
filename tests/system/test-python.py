#!/usr/bin/env python3
"""System test: a real mbxd, driven by the Python client (clients/python/mbx.py),
by mbxctl's metrics, watch and audit tail, and started the ways systemd
starts it: with a passed socket (LISTEN_FDS) and a notify socket.

usage: test-python.py MBXD MBXCTL  (as root, like the other system tests)
"""
import os
import pwd
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
import mbx  # noqa: E402

MBXD = MBXCTL = None
GET_HEALTH_INFO, SANITIZE, IDENTIFY = 0x4200, 0x4400, 0x0001

POLICY = """version: 1
defaults:
  audit: [config, data, security, fabric, vendor]
rules:
  - name: root-memdev
    who: { users: [root] }
    devices: ["mem*"]
    allow: [read, log, config, data]
  - name: root-switch-identify      # so root sees switch0 (docs/policy.md)
    who: { users: [root] }
    devices: [switch0]
    allow_opcodes: [0x5100]
"""


class Daemon:
    """A temporary folder with config and policy, and mbxd running on it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mbxd-py-")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "mbxd.sock")
        self.audit = os.path.join(self.dir, "audit.jsonl")
        self.config = os.path.join(self.dir, "mbxd.yaml")
        with open(os.path.join(self.dir, "policy.yaml"), "w") as f:
            f.write(POLICY)
        with open(self.config, "w") as f:
            f.write(f"socket: {{ path: {self.sock}, mode: \"0666\" }}\n"
                    f"policy: {self.dir}/policy.yaml\naudit: {{ path: {self.audit} }}\n"
                    "devices:\n"
                    "  - name: mem0\n    transport: sim\n"
                    "    options: { model: memdev, serial: 0x1111, sanitize_ms: 800 }\n"
                    "  - name: switch0\n    transport: sim\n"
                    "    options: { model: switch, ports: 4, tunnel_port: 1 }\n")
        self.log = open(os.path.join(self.dir, "mbxd.log"), "w+")  # closed by cleanup()
        self.proc = None

    def start(self, pass_fds=(), env=None, preexec=None, prefix=()):
        self.proc = subprocess.Popen([*prefix, MBXD, "-d", "-v", "-f", self.config],
                                     stdout=self.log, stderr=self.log, pass_fds=pass_fds,
                                     env=env, preexec_fn=preexec)
        for _ in range(500):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.sock)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"mbxd exited: {self.logtext()}")
                time.sleep(0.02)
        raise AssertionError("mbxd did not open its socket in 10 s")

    def logtext(self):
        self.log.seek(0)
        return self.log.read()

    def check_sandbox(self):
        """Fails when mbxd died of SIGSYS, naming the call its handler wrote."""
        if self.proc and self.proc.poll() == -signal.SIGSYS:
            said = [ln for ln in self.logtext().splitlines() if "sandbox: system call" in ln]
            raise AssertionError("mbxd died of SIGSYS: " +
                                 (said[-1] if said else "its log does not name the call"))

    def stop(self):
        self.check_sandbox()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(10)
        return None

    def cleanup(self):
        sigsys = self.proc is not None and self.proc.poll() == -signal.SIGSYS
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        said = self.logtext() if sigsys else ""
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir], check=False)
        if sigsys:
            raise AssertionError("mbxd died of SIGSYS: " + said)


class PythonClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.cleanup()

    def client(self):
        return mbx.Client(self.d.sock)

    def test_hello_and_devices(self):
        with self.client() as c:
            self.assertEqual(c.server["version"], 1)
            self.assertEqual(c.server["max_payload"], 1 << 20)
            devs = {d.name: d for d in c.devices()}
        self.assertEqual(sorted(devs), ["mem0", "switch0"])
        self.assertEqual(devs["mem0"].kind, "memdev")
        self.assertEqual(devs["switch0"].kind, "switch")
        self.assertEqual(devs["mem0"].state, "ready")

    def test_submit_explain_and_denial(self):
        with self.client() as c:
            r = c.submit("mem0", GET_HEALTH_INFO)
            self.assertTrue(r.ok, r)
            self.assertEqual((r.cxl_rc, r.cls, r.decision, r.rule), (0, "read", "allow",
                                                                      "root-memdev"))
            self.assertGreater(len(r.payload), 0)
            e = c.explain("switch0", IDENTIFY)
            self.assertEqual((e.status, e.decision, e.rule), ("denied", "deny", ""))
            self.assertEqual(c.submit("nope", IDENTIFY).status, "no-such-device")

    def test_metrics_count_what_happened(self):
        with self.client() as c:
            before = c.metrics()
            c.submit("mem0", GET_HEALTH_INFO)
            c.submit("switch0", IDENTIFY)
            after = c.metrics()
        self.assertIn("# TYPE mbxd_requests_total counter", after)

        def value(text, sample):
            for line in text.splitlines():
                if line.startswith(sample + " "):
                    return int(line.split()[-1])
            self.fail(f"no {sample} in metrics")

        allowed = 'mbxd_requests_total{device="mem0",class="read",outcome="allowed"}'
        denied = 'mbxd_requests_total{device="switch0",class="read",outcome="denied"}'
        self.assertEqual(value(after, allowed), value(before, allowed) + 1)
        self.assertEqual(value(after, denied), value(before, denied) + 1)
        self.assertEqual(value(after, 'mbxd_queue_depth{device="mem0"}'), 0)

    def test_watch_sees_another_clients_sanitize(self):
        with self.client() as w, self.client() as c:
            tag = w.watch("mem0")
            with self.assertRaises(mbx.NoDevice):
                w.watch("nope")
            r = c.submit("mem0", SANITIZE, reason="python test")
            self.assertTrue(r.ok and r.cxl_rc == 1, r)  # background started
            kinds = []
            while True:
                etag, ev = w.next_event(timeout=10)
                self.assertEqual((etag, ev.device, ev.opcode), (tag, "mem0", SANITIZE))
                self.assertEqual(ev.audit_seq, r.audit_seq)
                kinds.append(ev.kind)
                if ev.kind == "complete":
                    break
            self.assertEqual(ev.cxl_rc, 0)
            self.assertGreaterEqual(len(kinds), 2)
            # The requester got its own events, with its own tag.
            _, mine = c.next_event(timeout=5)
            self.assertEqual(mine.opcode, SANITIZE)
            text = c.metrics()
        self.assertIn('mbxd_background_operations_total{device="mem0",event="completed"}',
                      text)
        # mbxctl audit tail decodes the three records of the operation.
        out = subprocess.run([MBXCTL, "audit", "tail", "-n", "3", self.d.audit],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        self.assertEqual(len(out), 3, out)
        self.assertIn("intent", out[0])
        self.assertIn("background=completed", out[2])
        self.assertIn('reason="python test"', out[2])

    def test_mbxctl_metrics_textfile_and_watch(self):
        prom = os.path.join(self.d.dir, "mbxd.prom")
        subprocess.run([MBXCTL, "--socket", self.d.sock, "metrics", "--textfile", prom],
                       check=True)
        with open(prom) as f:
            self.assertIn("mbxd_up 1\n", f.read())
        self.assertEqual([n for n in os.listdir(self.d.dir) if n.endswith(".tmp")], [])
        names = subprocess.run([MBXCTL, "--socket", self.d.sock, "devices", "--names"],
                               capture_output=True, text=True, check=True).stdout
        self.assertEqual(names, "mem0\nswitch0\n")
        watch = subprocess.Popen([MBXCTL, "--socket", self.d.sock, "--json", "watch", "mem0",
                                  "--until-complete"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        with self.client() as c:
            self.assertTrue(c.submit("mem0", SANITIZE, reason="mbxctl watch").ok)
        out, _ = watch.communicate(timeout=15)
        self.assertEqual(watch.returncode, 0, out)
        self.assertIn('"event":"complete"', out.splitlines()[-1])

    def test_malformed_frames_are_refused(self):
        with self.assertRaises(mbx.ProtocolError):
            mbx.decode_result(b"\0" * 10)
        with self.assertRaises(mbx.ProtocolError):
            mbx.decode_metrics(struct.pack("<I", 3) + b"a\0b")
        with self.assertRaises(mbx.ProtocolError):
            mbx.decode_event(mbx._wstr("mem0", 32, "d") + struct.pack("<HBBHHQ", 1, 3, 0, 0, 0, 0))
        with self.assertRaises(mbx.ProtocolError):
            mbx.decode_header(mbx.HEADER.pack(0, 10, 0, 1))
        with self.assertRaises(ValueError):
            mbx.encode_submit("x" * 32, 1)


class Activation(unittest.TestCase):
    """mbxd as systemd starts it: a passed listening socket, READY=1 and STOPPING=1."""

    def test_passed_socket_and_notify(self):
        d = Daemon()
        try:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(d.sock)
            os.chmod(d.sock, 0o666)
            listener.listen(16)
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify_path = os.path.join(d.dir, "notify")
            notify.bind(notify_path)
            notify.settimeout(10)
            os.chmod(d.dir, 0o777)  # mbxd has dropped to _mbxd when it says STOPPING
            os.chmod(notify_path, 0o777)
            fd = listener.fileno()

            # As systemd does: the socket at fd 3, LISTEN_PID naming mbxd (sh execs it).
            env = dict(os.environ, NOTIFY_SOCKET=notify_path, LISTEN_FDS="1")
            self.assertLess(fd, 10)  # sh redirects single-digit descriptors
            d.start(pass_fds=(fd,), env=env,
                    prefix=("/bin/sh", "-c", f'LISTEN_PID=$$ exec "$0" "$@" 3<&{fd} {fd}<&-'))
            self.assertEqual(notify.recv(4096), b"READY=1")
            listener.close()  # only mbxd holds it now
            with mbx.Client(d.sock) as c:
                self.assertEqual(len(c.devices()), 2)
            self.assertEqual(d.stop(), 0, d.logtext())
            self.assertEqual(notify.recv(4096), b"STOPPING=1")
            # The socket file belongs to the service manager: mbxd leaves it.
            self.assertTrue(os.path.exists(d.sock), d.logtext())
        finally:
            d.cleanup()

    def test_two_passed_sockets_are_refused(self):
        d = Daemon()
        try:
            p = subprocess.run(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', MBXD, "-d",
                                "-f", d.config], env=dict(os.environ, LISTEN_FDS="2"),
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("passed 2 sockets", p.stderr)
        finally:
            d.cleanup()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    MBXD, MBXCTL = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        sys.exit("system tests need root (mbxd drops to _mbxd), as CI runs them")
    try:
        pwd.getpwnam("_mbxd")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", "_mbxd"], check=True)
    unittest.main(argv=sys.argv[:1], verbosity=2)
