"""Network I/O for the bundled monitoring plugins, bounded by one deadline.

A monitoring server that is down, slow or silent must never hold up a backup
job for longer than the plugin's ``timeout``. A socket timeout alone bounds
each call, not the exchange: a server that trickles one byte at a time could
stretch it indefinitely. Everything here therefore takes a `Deadline` and
gives each socket call only the time that is left of it.

Names are resolved by the system resolver, whose own limits (``timeout`` and
``attempts`` in resolv.conf) apply; a numeric address avoids it.

The plugin directory is on ``sys.path`` of every plugin interpreter, hence
the ``bareosdir_`` prefix on this module's name.
"""

import errno
import socket
import time


class Deadline:
    """A point in time after which the current exchange is abandoned."""

    def __init__(self, seconds):
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self):
        """Seconds left; raises socket.timeout when none are."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left

    def arm(self, sock):
        """Give `sock` the time that is left, for its next call."""
        sock.settimeout(self.remaining())


def connect(host, port, deadline):
    """A TCP connection to host:port made before `deadline`."""
    last_error = None
    for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            deadline.arm(sock)
            sock.connect(address)
            return sock
        except OSError as error:
            sock.close()
            last_error = error
            if isinstance(error, socket.timeout):
                break
    if last_error is None:
        last_error = OSError("no address found for %s" % host)
    raise last_error


def send_all(sock, data, deadline):
    view = memoryview(data)
    while view:
        deadline.arm(sock)
        sent = sock.send(view)
        view = view[sent:]


def recv_exact(sock, size, deadline):
    """Exactly `size` bytes; ConnectionError if the peer closes first."""
    chunks = []
    missing = size
    while missing:
        deadline.arm(sock)
        chunk = sock.recv(missing)
        if not chunk:
            raise ConnectionError(
                "the server closed the connection after %d of %d bytes"
                % (size - missing, size))
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def recv_some(sock, limit, deadline):
    """Up to `limit` bytes, until the peer closes (or `limit` is reached)."""
    chunks = []
    got = 0
    while got < limit:
        deadline.arm(sock)
        chunk = sock.recv(min(65536, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def describe_error(error, timeout=None):
    """A short human reason for a failed exchange, for a job message;
    `timeout` is the exchange's limit in seconds."""
    if isinstance(error, socket.timeout):
        if timeout is not None:
            return "no complete answer within the timeout of %g s" % timeout
        return "timed out"
    if isinstance(error, socket.gaierror):
        return "cannot resolve the host name (%s)" % (error.strerror or error)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(error, OSError) and error.errno in (
            errno.EHOSTUNREACH, errno.ENETUNREACH):
        return error.strerror
    text = str(error)
    return text if text else type(error).__name__
