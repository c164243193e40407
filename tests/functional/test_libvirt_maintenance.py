"""Maintenance mode on real libvirt: a host drained of three guests by a drain plan.

Three libvirt hosts, the conductor and one agent per host as separate processes over
RabbitMQ (the fixtures of tests/functional/test_libvirt.py). host1 runs a guest on
shared storage, a guest on its local disk, and holds a shut-off guest on its local
disk. ``vmmig host maintenance set host1`` takes it out of placement and the drain
moves all three: the running ones live (the local disk copied along), the shut-off
one cold. Three hosts, not two, so the plan has a choice of destination for each
guest: the drain must not assume a single one.

What is checked is what an operator would see: the dry run lists the three moves and
records nothing; the plan ends ``succeeded`` with every action moved; each guest is
defined on one host other than host1, in the power state it had, in libvirt and in
the record; the live ones kept their memory (the console's checksum), every disk
holds the pattern its first boot wrote; no VM may be placed on host1.

Environment: as tests/functional/test_libvirt.py (``VMMIG_VIRT_DIR``).
"""

import json
import os
import time

import pytest
import sqlalchemy as sa

from tests import fixtures as vfix
from tests.functional import test_libvirt as tl
from tests.functional import virt_env as ve

pytestmark = [pytest.mark.libvirt, pytest.mark.services, pytest.mark.timeout(420)]

HOSTS = ('host1', 'host2', 'host3')
REASON = 'firmware update'


@pytest.fixture(scope='module')
def cloud():
    reason = ve.unavailable_reason()
    if reason:
        vfix.service_missing('the real libvirt environment', reason)
    import libvirt
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    stack = []

    def use(fixture):
        fixture.setUp()
        stack.append(fixture.cleanUp)
        return fixture

    try:
        env = use(ve.VirtEnvFixture(n_hosts=len(HOSTS)))
        database = use(vfix.DatabaseFixture(os.environ.get('VMMIG_LIBVIRT_DB', 'sqlite')))
        services = use(vfix.ServiceProcesses(
            list(HOSTS), database.url,
            extra_conf={'drivers': {'hypervisor': 'libvirt', 'fencing': 'heartbeat'},
                        'agent': {'heartbeat_interval': '0.5'},
                        'conductor': {'heartbeat_timeout': tl.HEARTBEAT_TIMEOUT,
                                      'fencing_grace': tl.FENCING_GRACE},
                        'cold_migration': {'shutdown_timeout': '30'}},
            agent_conf={h: tl.agent_conf(env, h) for h in HOSTS}))
        engine = sa.create_engine(database.url)
        stack.append(engine.dispose)
        cloud = tl.Cloud(env, services, engine)
        stack.append(cloud.close)
        yield cloud
    finally:
        while stack:
            stack.pop()()


def _guests(cloud):
    names = ('mt-shared', 'mt-local', 'mt-off')
    for name in names:
        cloud.remove(name)
        for directory in [cloud.env.shared_dir] + [cloud.env.local_dir(h) for h in HOSTS]:
            path = os.path.join(directory, name + '.qcow2')
            if os.path.exists(path):
                os.unlink(path)
    return (tl.Guest('mt-shared', [cloud.disk('mt-shared')], **tl.LIGHT),
            tl.Guest('mt-local', [cloud.disk('mt-local', 'host1')], **tl.LIGHT),
            tl.Guest('mt-off', [cloud.disk('mt-off', 'host1')], **tl.LIGHT))


def _restart(guest, dom):
    """Power the guest off through ACPI and boot it again: its disks are read afresh."""
    dom.shutdown()
    ve.wait_for_state(dom, 5, 60)
    after = guest.offset()
    dom.create()
    return after


def test_maintenance_drains_three_guests_each_in_its_power_state(cloud):
    shared, local, off = _guests(cloud)
    for guest in (shared, local, off):
        cloud.boot(guest, 'host1')
        assert guest.written, guest.tail()  # the first boot wrote its disk pattern
    # The shut-off guest: booted once (its disk holds the pattern), then powered off.
    cloud.dom(off.name, 'host1').destroy()
    cloud.wait_reported(off.name, 'host1', 'shutoff')
    before = {g.name: dict(cloud.instance(g.name)) for g in (shared, local, off)}

    # The dry run: what would move and how, with an estimate; nothing recorded.
    code, out, err = cloud.cli('host', 'maintenance', 'set', 'host1', '--reason', REASON,
                               '--dry-run', '-f', 'json')
    assert code == 0, out + err
    dry = json.loads(out)
    assert dry['id'] is None and dry['dry_run'] and dry['estimate_s'] > 0, dry
    kinds = {a['instance']: (a['migration_type'], a['state']) for a in dry['actions']}
    assert kinds == {shared.name: ('live', 'pending'), local.name: ('live', 'pending'),
                     off.name: ('cold', 'pending')}, dry
    for action in dry['actions']:
        assert action['dest_host'] in ('host2', 'host3') and action['estimate_s'] > 0, action
    assert not cloud.rows('SELECT id FROM action_plans') and not cloud.rows(
        'SELECT id FROM migrations'), 'a dry run recorded something'
    assert not cloud.rows("SELECT maintenance FROM hosts WHERE name = 'host1'")[0][
        'maintenance'], 'a dry run put host1 into maintenance'
    for guest in (shared, local, off):
        assert list(cloud.locate(guest.name)) == ['host1'], guest.name

    # The drain itself, waited for by the CLI.
    offsets = {g.name: g.offset() for g in (shared, local)}
    started = time.monotonic()
    code, out, err = cloud.cli('host', 'maintenance', 'set', 'host1', '--reason', REASON,
                               '--wait', '-f', 'json')
    plan = json.loads(out) if out else {}
    assert code == 0 and plan.get('state') == 'succeeded', (
        'drain of host1: exit %s\n%s%s\n%s' % (code, out, err, cloud.logs()))
    actions = {a['instance']: a for a in plan['actions']}
    tl._log('drained host1 in %.1f s (estimated %.1f s): %s' % (
        time.monotonic() - started, plan['estimate_s'], ', '.join(
            '%s %s to %s' % (n, a['migration_type'], a['dest_host'])
            for n, a in sorted(actions.items()))))
    assert plan['reason'] == REASON and plan['strategy'] == 'drain', plan
    assert sorted(actions) == sorted(g.name for g in (shared, local, off)), plan
    for name, action in actions.items():
        assert action['state'] == 'moved' and action['migration_id'], action
        rec = cloud.record(action['migration_id'])
        cloud.expect(rec, 'completed', action['dest_host'])
        assert rec['source_host'] == 'host1' and rec['dest_host'] in ('host2', 'host3'), rec
        assert rec['migration_type'] == ('cold' if name == off.name else 'live'), rec

    # Each guest on one host other than host1, in its power state (libvirt and record).
    for guest, state, power in ((shared, 1, 'running'), (local, 1, 'running'),
                                (off, 5, 'shutoff')):
        dest = actions[guest.name]['dest_host']
        cloud.assert_only_on(guest.name, dest, state)
        row = cloud.wait_reported(guest.name, dest, power)
        assert row['power_state'] == before[guest.name]['power_state'] == power, row

    # The live ones kept their memory.
    for guest in (shared, local):
        dest = actions[guest.name]['dest_host']
        guest.assert_memory_intact(offsets[guest.name], cloud.dom(guest.name, dest))

    # The local disks moved with their guests, and hold what the first boot wrote.
    for guest in (local, off):
        dest = actions[guest.name]['dest_host']
        source = guest.disks[0]
        moved = os.path.join(cloud.env.local_dir(dest), os.path.basename(source))
        assert os.path.exists(moved) and not os.path.exists(source), (guest.name, moved)
        dom = cloud.dom(guest.name, dest)
        for xml in (dom.XMLDesc(0), dom.XMLDesc(2)):  # live and persistent definitions
            assert moved in xml and source not in xml, xml
    dom = cloud.dom(local.name, actions[local.name]['dest_host'])
    local.assert_disks_verified(_restart(local, dom), dom)
    dom = cloud.dom(off.name, actions[off.name]['dest_host'])
    after = off.offset()
    dom.create()
    off.assert_disks_verified(after, dom)
    dom = cloud.dom(shared.name, actions[shared.name]['dest_host'])
    shared.assert_disks_verified(_restart(shared, dom), dom)

    # host1 is out of placement: recorded so, and every host check says why.
    host1 = cloud.rows("SELECT maintenance, maintenance_reason FROM hosts "
                       "WHERE name = 'host1'")[0]
    assert host1['maintenance'] and host1['maintenance_reason'] == REASON, host1
    for guest, mtype in ((shared, 'live'), (off, 'cold')):
        verdicts = {v['host']: v for v in cloud.rpc('host_eligible', instance=guest.name,
                                                    migration_type=mtype)}
        assert not verdicts['host1']['eligible'], verdicts
        assert any('host host1 is in maintenance: %s' % REASON in r
                   for r in verdicts['host1']['reasons']), verdicts['host1']
    for guest in (shared, local, off):
        cloud.remove(guest.name)
