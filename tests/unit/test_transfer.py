"""The agent-to-agent copy: single-use tokens bound to one file and one peer, data checked
against what the source recorded, sizes bounded by it, nothing left after a failure."""

import hashlib
import os
import socket
import threading

import pytest

from vmmig.agent import transfer
from vmmig import exception


def _offer(tmp_path, data=b'disk data' * 1000, peer=None, files=('disk:vda',)):
    specs = []
    for file_id in files:
        path = tmp_path / ('src-' + file_id.replace(':', '-'))
        path.write_bytes(data)
        specs.append({'id': file_id, 'path': str(path), 'kind': 'disk', 'size': len(data),
                      'sha256': transfer.sha256_of(str(path))})
    offer = transfer.Offer(specs, '127.0.0.1', peer=peer)
    return offer, offer.describe()


def _left(directory):
    return sorted(os.listdir(directory))


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / 'dest'
    path.mkdir()
    return path


def test_a_file_is_copied_and_checked(tmp_path, dest):
    offer, described = _offer(tmp_path, peer='127.0.0.1')
    try:
        digest = transfer.fetch(described, 'disk:vda', str(dest / 'vda'),
                                source_address='127.0.0.1')
    finally:
        offer.close()
    assert digest == hashlib.sha256(b'disk data' * 1000).hexdigest()
    assert (dest / 'vda').read_bytes() == b'disk data' * 1000
    assert _left(dest) == ['vda']


def test_a_token_opens_its_file_once(tmp_path, dest):
    offer, described = _offer(tmp_path)
    try:
        transfer.fetch(described, 'disk:vda', str(dest / 'first'))
        with pytest.raises(exception.MigrationFailed, match='refused'):
            transfer.fetch(described, 'disk:vda', str(dest / 'second'))
    finally:
        offer.close()
    assert _left(dest) == ['first']


def test_a_token_opens_no_other_file(tmp_path, dest):
    offer, described = _offer(tmp_path, files=('disk:vda', 'disk:vdb'))
    vda, vdb = described['files']
    # vdb asked for with the token of vda
    stolen = dict(described, files=[dict(vdb, token=vda['token'])])
    try:
        with pytest.raises(exception.MigrationFailed, match='refused'):
            transfer.fetch(stolen, 'disk:vdb', str(dest / 'vdb'))
        # ... which used vda's token up, and left vdb's for its owner
        transfer.fetch(described, 'disk:vdb', str(dest / 'vdb'))
        with pytest.raises(exception.MigrationFailed, match='refused'):
            transfer.fetch(described, 'disk:vda', str(dest / 'vda'))
    finally:
        offer.close()
    assert _left(dest) == ['vdb']


def test_only_the_peer_the_offer_names_may_fetch(tmp_path, dest):
    offer, described = _offer(tmp_path, peer='127.0.0.2')
    try:
        with pytest.raises(exception.MigrationFailed, match='refused'):
            transfer.fetch(described, 'disk:vda', str(dest / 'vda'),
                           source_address='127.0.0.1')
        assert _left(dest) == []
        # The refusal did not use the token up: the named peer still gets the file.
        transfer.fetch(described, 'disk:vda', str(dest / 'vda'), source_address='127.0.0.2')
    finally:
        offer.close()
    assert _left(dest) == ['vda']


def test_data_that_differs_from_the_record_is_refused(tmp_path, dest):
    """The sender's stream vouches for itself (its own trailing digest matches what it
    sends); the receiver believes the checksum recorded at the offer instead."""
    offer, described = _offer(tmp_path)
    source = offer.files['disk:vda']['path']
    with open(source, 'r+b') as f:
        f.write(b'X')  # same size, other data, after the offer was recorded
    try:
        with pytest.raises(exception.MigrationFailed, match='recorded by the source'):
            transfer.fetch(described, 'disk:vda', str(dest / 'vda'))
    finally:
        offer.close()
    assert _left(dest) == []


def test_a_file_longer_than_recorded_is_refused_before_it_is_written(tmp_path, dest):
    offer, described = _offer(tmp_path)
    with open(offer.files['disk:vda']['path'], 'ab') as f:
        f.write(b'\0' * (4 * 1024 * 1024))
    try:
        with pytest.raises(exception.MigrationFailed, match='announces'):
            transfer.fetch(described, 'disk:vda', str(dest / 'vda'))
    finally:
        offer.close()
    assert _left(dest) == []


def test_an_offer_without_a_recorded_checksum_is_not_fetched(tmp_path, dest):
    offer, described = _offer(tmp_path)
    unrecorded = dict(described, files=[{k: v for k, v in f.items() if k != 'sha256'}
                                        for f in described['files']])
    try:
        with pytest.raises(exception.MigrationFailed, match='no checksum'):
            transfer.fetch(unrecorded, 'disk:vda', str(dest / 'vda'))
    finally:
        offer.close()
    assert _left(dest) == []


def test_a_silent_sender_times_out_with_nothing_left(dest):
    """A source that announces a file, sends part of it, then says nothing."""
    server = socket.create_server(('127.0.0.1', 0))
    release = threading.Event()

    def stall():
        conn, _peer = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b'100\n' + b'x' * 10)
            release.wait(10)

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    offer = {'address': '127.0.0.1', 'port': server.getsockname()[1],
             'files': [{'id': 'disk:vda', 'kind': 'disk', 'size': 100, 'token': 'ab',
                        'sha256': 'a' * 64}]}
    try:
        with pytest.raises(exception.MigrationFailed, match='broke'):
            transfer.fetch(offer, 'disk:vda', str(dest / 'vda'), timeout=0.3)
    finally:
        release.set()
        thread.join()
        server.close()
    assert _left(dest) == []
