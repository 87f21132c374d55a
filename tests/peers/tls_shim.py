#!/usr/bin/env python3
"""A TLS-terminating shim for plain-TCP test drivers (standard library only).

  tls_shim.py TARGET_PORT CA [HOST]

Listens on 127.0.0.1 (port chosen by the OS) and prints
"listening on 127.0.0.1:PORT". Every plain TCP connection is forwarded over
TLS to HOST:TARGET_PORT (default localhost), verified against CA (PEM) with
HOST as the server name. Bytes flow both ways unchanged; when one side ends
its stream the shim ends the other side's (after the TLS side's close_notify,
or as a plain TCP end when the plain side stops), so a driver sees the
server's TCP close as if it talked to it directly.
"""
import select
import socket
import ssl
import sys
import threading


def pump(plain, tls):
    plain_open = tls_open = True
    try:
        while plain_open or tls_open:
            ready = [s for s, o in ((plain, plain_open), (tls, tls_open)) if o]
            # data already decrypted inside the SSL object does not wake select
            r = [tls] if tls_open and tls.pending() else select.select(ready, [], [], 30)[0]
            if not r:
                break
            for s in r:
                try:
                    data = s.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except (ConnectionError, ssl.SSLError, OSError):
                    data = b""
                other = plain if s is tls else tls
                if data:
                    try:
                        other.sendall(data)
                    except OSError:
                        return
                    continue
                if s is tls:
                    tls_open = False
                    try:
                        plain.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                else:
                    plain_open = False
                    try:
                        tls.shutdown(socket.SHUT_WR)  # a TCP end under TLS, no close_notify
                    except OSError:
                        pass
    finally:
        for s in (plain, tls):
            try:
                s.close()
            except OSError:
                pass


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    port, ca = int(sys.argv[1]), sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else "localhost"
    ctx = ssl.create_default_context(cafile=ca)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    print("listening on 127.0.0.1:%d" % lsock.getsockname()[1], flush=True)
    while True:
        plain, _ = lsock.accept()
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = ctx.wrap_socket(raw, server_hostname=host)
            tls.settimeout(None)
        except (OSError, ssl.SSLError) as e:
            print("shim: cannot reach the TLS server: %s" % e, flush=True)
            plain.close()
            continue
        threading.Thread(target=pump, args=(plain, tls), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
