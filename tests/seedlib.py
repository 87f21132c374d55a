"""What the Python end-to-end tests (tests/interop_seed_*.py,
tests/interop_pmd_fanout.py) share: finding
Python `websockets` (installing Debian's as root, or running the script again
under /usr/bin/python3 where Debian puts it; missing: a skip, a failure with
RTWS_REQUIRE_ALL=1), building the example programs, check() with the
"N passed, M failed" count, starting a server and reading its
"listening on H:P" line, and stopping only the processes started here, by
their handles. Imported by the scripts, not run on its own."""
import asyncio, http.client, importlib, json, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.abspath(sys.argv[0])  # before the chdir: the script to run again
os.chdir(ROOT)  # the scripts name programs as build/..., tests/deps.sh, from the top
passed = failed = 0
procs = []  # asyncio subprocesses started by the test: killed at its end


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok: " + what, flush=True)
    else:
        failed += 1
        print("FAILED: " + what, flush=True)


def finish():
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def _import_websockets():
    importlib.invalidate_caches()
    try:
        return importlib.import_module("websockets")
    except ImportError:
        return None


def need_websockets():
    """The websockets module; when it cannot be had, the skip (or with
    RTWS_REQUIRE_ALL=1 the failure) is printed and the script exits."""
    ws = _import_websockets()
    if ws:
        return ws
    if os.geteuid() == 0:
        subprocess.run(["bash", "-c", ". tests/deps.sh; rtws_apt python3-websockets"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        ws = _import_websockets()
        if ws:
            return ws
    system = "/usr/bin/python3"
    if os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system) \
            and not os.environ.get("RTWS_PY_REEXEC"):
        os.environ["RTWS_PY_REEXEC"] = "1"
        os.execv(system, [system, SCRIPT] + sys.argv[1:])
    if os.environ.get("RTWS_REQUIRE_ALL") == "1":
        print("FAILED: python websockets missing (apt-get install python3-websockets) and RTWS_REQUIRE_ALL=1")
        print("0 passed, 1 failed")
        sys.exit(1)
    print("skipped: python websockets missing (apt-get install python3-websockets)")
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


def build(*progs):
    """make -s each program (paths from the top); a failure is counted, the
    script ends with its result line."""
    for prog in progs:
        if subprocess.call(["make", "-s", prog]) != 0:
            check(False, "make " + prog)
            finish()


def listening_port(line):
    """The port of a 'listening on H:P' line, else 0."""
    m = re.match(r"listening on \S+:(\d+)\s*$", line)
    return int(m.group(1)) if m else 0


def start(argv, **popen):
    """Starts a server that prints 'listening on H:P' first; (Popen, its
    first line stripped, the port or 0)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **popen)
    line = p.stdout.readline().strip()  # the server prints it at once, or exits
    return p, line, listening_port(line)


def stop(p):
    """Ends a process started by start(): TERM, then KILL after 5 s."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def run_with_server(argv, main, timeout):
    """Starts the server argv, checks its listening line, runs main(port)
    within timeout seconds (a timeout or an exception is one failure), stops
    the server."""
    p, line, port = start(argv)
    try:
        check(line.startswith("listening on "), "server prints the listening line: %r" % line)
        asyncio.run(asyncio.wait_for(main(int(line.rsplit(":", 1)[1])), timeout))
    except Exception as e:  # noqa: BLE001
        check(False, "the test ran to its end (%r)" % e)
    finally:
        stop(p)


def run_async(main, timeout):
    """Runs main() within timeout seconds (a timeout or a crash is one more
    failure), kills the processes left in procs, ends with the result line."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(asyncio.wait_for(main(), timeout))
    except Exception as e:  # noqa: BLE001
        check(False, "test ran to the end (%r)" % e)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
    finish()


def request(port, method, path, body=None, headers=None):
    """An HTTP request to 127.0.0.1:port; (status, the JSON body, None when
    empty, the raw bytes when not JSON)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data) if data else None
    except ValueError:
        return r.status, data


async def recv(ws, timeout=3.0):
    """The next message on ws as JSON; None after timeout, on close, or when
    it is not JSON."""
    import websockets
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))
    except (asyncio.TimeoutError, websockets.ConnectionClosed, ValueError):
        return None


async def refused(url):
    """The HTTP status with which the upgrade to url was refused, or "open"."""
    import websockets
    try:
        async with websockets.connect(url, open_timeout=5):
            return "open"
    except websockets.InvalidStatusCode as e:
        return e.status_code
    except Exception as e:  # noqa: BLE001
        return repr(e)


class Proc:
    """A program started with asyncio.create_subprocess_exec (stdout a pipe):
    its stdout lines collected as they come; killed at the end by run_async."""

    def __init__(self, proc):
        self.p, self.lines = proc, []
        procs.append(proc)
        asyncio.get_event_loop().create_task(self._read())

    async def _read(self):
        while True:
            ln = await self.p.stdout.readline()
            if not ln:
                return
            self.lines.append(ln.decode(errors="replace").rstrip("\n"))

    async def wait(self, pattern, start=0, timeout=5.0):
        """index of the first line from start matching pattern, or -1"""
        end = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.lines)):
                if re.search(pattern, self.lines[i]):
                    return i
            if time.monotonic() > end:
                return -1
            await asyncio.sleep(0.02)

    def say(self, line):
        self.p.stdin.write((line + "\n").encode())
