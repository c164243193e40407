"""Agent-to-agent copy of a stopped VM's local files (disks, saved memory).

The hosts may share nothing, so the destination agent pulls each file from a
TCP offer of the source agent. The source computes each file's size and SHA-256
when it makes the offer, and the conductor records them with the migration;
the receiver checks what arrives against those, never against what the stream
itself claims, and refuses a file longer than recorded before writing past it.
Each file has a token of its own, good for one fetch of that file by the one
peer address the offer was made for.

Wire format, per connection: the receiver sends ``<token> <file id>\\n``; the
sender answers ``<size>\\n`` then ``size`` bytes then 64 hex digits (the
sender's digest, which the receiver reads but does not trust).

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


def sha256_of(path):
    """The SHA-256 of the file at ``path``, in hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


class Offer(object):
    """Serves each listed file once, to the peer that shows its token, until withdrawn.

    ``peer``: the only address a fetch is accepted from (the receiving agent's
    [agent] transfer_address); None accepts any, for an older conductor that does
    not say. ``bandwidth``: MiB/s each file is sent at, at most (0: as fast as it goes).
    """

    def __init__(self, files, address, peer=None, timeout=600, bandwidth=0):
        self.files = {f['id']: dict(f, token=secrets.token_hex(16)) for f in files}
        self.peer = peer
        # token -> file id, until used: a token opens one file, once.
        self._tokens = {f['token']: file_id for file_id, f in self.files.items()}
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
        return {'address': self.address, 'port': self.port,
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
        peer = conn.getpeername()[0]
        request = _read_line(conn)
        token, _sep, file_id = request.partition(' ')
        allowed = self.peer is None or peer == self.peer
        with self._lock:
            # Used up by this request whatever follows: a second fetch needs a new offer.
            owner = self._tokens.pop(token, None) if allowed else None
        if owner is None or owner != file_id:
            LOG.warning('Refused a transfer request from %s for %r: %s', peer, file_id,
                        'not the token of this file, or used already' if allowed
                        else 'offered to %s only' % self.peer)
            return
        spec = self.files[file_id]
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


def fetch(offer, file_id, dest_path, timeout=600, source_address=None):
    """Copy one offered file to ``dest_path``; return its SHA-256, checked against the
    one the offer recorded.

    ``source_address``: the local address to connect from (the one the offer is
    bound to). Nothing is left at ``dest_path`` (nor beside it) when the copy fails,
    whatever the failure: a refusal, a mismatch, a stream cut or silent past ``timeout``.
    """
    spec = next((f for f in offer['files'] if f['id'] == file_id), None)
    if spec is None or not spec.get('sha256'):
        raise exception.MigrationFailed(
            migration=file_id, reason='the offer records no checksum of %s' % file_id)
    tmp = dest_path + '.part'
    os.makedirs(os.path.dirname(dest_path), exist_ok=True)
    try:
        try:
            digest, left = _receive(offer, spec, tmp, timeout, source_address)
        except OSError as e:
            raise exception.MigrationFailed(
                migration=file_id, reason='copy of %s from %s:%s broke: %s' % (
                    file_id, offer['address'], offer['port'], e))
        if left or digest.hexdigest() != spec['sha256']:
            raise exception.MigrationFailed(
                migration=file_id, reason='copy of %s is corrupt or cut short (%d bytes '
                                          'missing, sha256 %s received, %s recorded by '
                                          'the source)' % (file_id, left, digest.hexdigest(),
                                                           spec['sha256']))
        os.replace(tmp, dest_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return digest.hexdigest()


def _receive(offer, spec, tmp, timeout, source_address):
    file_id = spec['id']
    with socket.create_connection(
            (offer['address'], offer['port']), timeout=timeout,
            source_address=(source_address, 0) if source_address else None) as conn:
        conn.sendall(('%s %s\n' % (spec.get('token', ''), file_id)).encode())
        header = _read_line(conn, limit=32)
        if not (header.isascii() and header.isdigit()):
            raise exception.MigrationFailed(migration=file_id,
                                            reason='the source refused to send %s' % file_id)
        size = int(header)
        if size != spec['size']:
            # Refused before a byte is written: what fills the disk is what was recorded.
            raise exception.MigrationFailed(
                migration=file_id, reason='the source announces %d bytes of %s; it '
                                          'recorded %d' % (size, file_id, spec['size']))
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
        if not left:
            _read_exact(conn, 64)  # the sender's own digest: not what is checked
    return digest, left


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
