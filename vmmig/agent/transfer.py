"""Agent-to-agent copy of a stopped VM's local files (disks, saved memory).

The hosts may share nothing, so the destination agent pulls each file from a
one-time TCP offer of the source agent. Each file is followed by the SHA-256
the sender computed while reading it; the receiver computes its own while
writing and refuses a mismatch, so a copy is verified without a second read.

Wire format, per connection: the receiver sends ``<token> <file id>\\n``; the
sender answers ``<size>\\n`` then ``size`` bytes then 64 hex digits.

Withdrawing an offer also cuts the copies under way: the receiver sees the
stream end short, fails, and removes what it wrote (an aborted cold migration
stops at once instead of after the whole disk).
"""

import hashlib
import logging
import os
import secrets
import socket
import threading
import time

from vmmig import exception

LOG = logging.getLogger(__name__)

CHUNK = 1024 * 1024


class Offer(object):
    """Serves the listed files to whoever shows the token, until withdrawn.

    ``bandwidth``: MiB/s each file is sent at, at most (0: as fast as it goes).
    """

    def __init__(self, files, address, timeout=600, bandwidth=0):
        self.files = {f['id']: f for f in files}
        self.token = secrets.token_hex(16)
        self._sock = socket.create_server((address, 0))
        self._sock.settimeout(1.0)
        self.address, self.port = self._sock.getsockname()[:2]
        self._timeout = timeout
        self._rate = bandwidth * 1024 * 1024
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conns = set()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name='vmmig-offer-%d' % self.port)
        self._thread.start()

    def describe(self):
        return {'address': self.address, 'port': self.port, 'token': self.token,
                'files': list(self.files.values())}

    def close(self):
        """Stop serving, and cut the copies under way."""
        self._closed.set()
        self._sock.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                # Wakes a sender blocked in sendall and ends the receiver's stream.
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # it ended meanwhile

    def _serve(self):
        while not self._closed.is_set():
            try:
                conn, _peer = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                if self._closed.is_set():
                    conn.close()
                    continue
                self._conns.add(conn)
            threading.Thread(target=self._send, args=(conn,), daemon=True).start()

    def _send(self, conn):
        try:
            with conn:
                self._send_file(conn)
        except OSError as e:
            if not self._closed.is_set():
                raise
            LOG.info('Transfer of port %d cut: the offer was withdrawn (%s)', self.port, e)
        finally:
            with self._lock:
                self._conns.discard(conn)

    def _send_file(self, conn):
        conn.settimeout(self._timeout)
        request = _read_line(conn)
        token, _sep, file_id = request.partition(' ')
        spec = self.files.get(file_id)
        if not secrets.compare_digest(token, self.token) or spec is None:
            LOG.warning('Refused a transfer request for %r', file_id)
            return
        digest = hashlib.sha256()
        conn.sendall(b'%d\n' % os.path.getsize(spec['path']))
        start, sent = time.monotonic(), 0
        with open(spec['path'], 'rb') as f:
            for chunk in iter(lambda: f.read(CHUNK), b''):
                if self._closed.is_set():
                    return
                digest.update(chunk)
                conn.sendall(chunk)
                sent += len(chunk)
                if self._rate:
                    # Wait out what the cap allows; a withdrawal ends the wait.
                    ahead = sent / self._rate - (time.monotonic() - start)
                    if ahead > 0 and self._closed.wait(ahead):
                        return
        conn.sendall(digest.hexdigest().encode())


def fetch(offer, file_id, dest_path, timeout=600):
    """Copy one offered file to ``dest_path``; return its verified SHA-256.

    Nothing is left at ``dest_path`` (nor beside it) when the copy fails."""
    tmp = dest_path + '.part'
    os.makedirs(os.path.dirname(dest_path), exist_ok=True)
    try:
        digest, left, sent_digest = _receive(offer, file_id, tmp, timeout)
        if left or sent_digest != digest.hexdigest():
            raise exception.MigrationFailed(
                migration=file_id, reason='copy of %s is corrupt or cut short (%d bytes '
                                          'missing, sha256 %s received vs %s sent)' % (
                                              file_id, left, digest.hexdigest(),
                                              sent_digest or 'none'))
        os.replace(tmp, dest_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return digest.hexdigest()


def _receive(offer, file_id, tmp, timeout):
    with socket.create_connection((offer['address'], offer['port']), timeout=timeout) as conn:
        conn.sendall(('%s %s\n' % (offer['token'], file_id)).encode())
        header = _read_line(conn)
        if not header.isdigit():
            raise exception.MigrationFailed(migration=file_id,
                                            reason='the source refused to send %s' % file_id)
        size = int(header)
        digest = hashlib.sha256()
        with open(tmp, 'wb') as out:
            left = size
            while left:
                chunk = conn.recv(min(CHUNK, left))
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        sent_digest = _read_exact(conn, 64).decode() if not left else ''
    return digest, left, sent_digest


def _read_line(conn, limit=4096):
    data = b''
    while not data.endswith(b'\n') and len(data) < limit:
        byte = conn.recv(1)
        if not byte:
            break
        data += byte
    return data.decode(errors='replace').strip()


def _read_exact(conn, n):
    data = b''
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
