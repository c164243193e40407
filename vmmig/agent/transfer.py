"""Agent-to-agent copy of a stopped VM's local files (disks, saved memory).

The hosts may share nothing, so the destination agent pulls each file from a
one-time TCP offer of the source agent. Each file is followed by the SHA-256
the sender computed while reading it; the receiver computes its own while
writing and refuses a mismatch, so a copy is verified without a second read.

Wire format, per connection: the receiver sends ``<token> <file id>\\n``; the
sender answers ``<size>\\n`` then ``size`` bytes then 64 hex digits.
"""

import hashlib
import logging
import os
import secrets
import socket
import threading

from vmmig import exception

LOG = logging.getLogger(__name__)

CHUNK = 1024 * 1024


class Offer(object):
    """Serves the listed files to whoever shows the token, until withdrawn."""

    def __init__(self, files, address, timeout=600):
        self.files = {f['id']: f for f in files}
        self.token = secrets.token_hex(16)
        self._sock = socket.create_server((address, 0))
        self._sock.settimeout(1.0)
        self.address, self.port = self._sock.getsockname()[:2]
        self._timeout = timeout
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name='vmmig-offer-%d' % self.port)
        self._thread.start()

    def describe(self):
        return {'address': self.address, 'port': self.port, 'token': self.token,
                'files': list(self.files.values())}

    def close(self):
        self._closed.set()
        self._sock.close()

    def _serve(self):
        while not self._closed.is_set():
            try:
                conn, _peer = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._send, args=(conn,), daemon=True).start()

    def _send(self, conn):
        with conn:
            conn.settimeout(self._timeout)
            request = _read_line(conn)
            token, _sep, file_id = request.partition(' ')
            spec = self.files.get(file_id)
            if not secrets.compare_digest(token, self.token) or spec is None:
                LOG.warning('Refused a transfer request for %r', file_id)
                return
            digest = hashlib.sha256()
            conn.sendall(b'%d\n' % os.path.getsize(spec['path']))
            with open(spec['path'], 'rb') as f:
                for chunk in iter(lambda: f.read(CHUNK), b''):
                    digest.update(chunk)
                    conn.sendall(chunk)
            conn.sendall(digest.hexdigest().encode())


def fetch(offer, file_id, dest_path, timeout=600):
    """Copy one offered file to ``dest_path``; return its verified SHA-256."""
    tmp = dest_path + '.part'
    os.makedirs(os.path.dirname(dest_path), exist_ok=True)
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
        sent_digest = _read_exact(conn, 64).decode()
    if left or sent_digest != digest.hexdigest():
        os.unlink(tmp)
        raise exception.MigrationFailed(
            migration=file_id, reason='copy of %s is corrupt (%d bytes missing, sha256 %s '
                                      'received vs %s sent)' % (file_id, left,
                                                                digest.hexdigest(), sent_digest))
    os.replace(tmp, dest_path)
    return digest.hexdigest()


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
