"""Each service's RabbitMQ user reaches what it needs and the broker refuses the rest.

The conductor and two agents run as separate processes, each connected as the user
tools/rabbitmq-users.sh made for it in a vhost of this run; the CLI connects as the
operators' user. An agent's credentials are then tried, through oslo.messaging as a
client of vmmig would use them, on what they must not reach: the broker refuses
(ACCESS_REFUSED) and nothing is recorded. What the broker cannot refuse (a message
sent through the default exchange, which every service that answers calls may
write to) is refused by the receiving RPC server.
"""

import json
import subprocess
import time
import uuid

import pytest
import sqlalchemy as sa

from tests import fixtures as vfix

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

CLUSTER = {
    'hosts': {'ta': {'shared_storage': 'nfs', 'cpu_features': ['sse4.2']},
              'tb': {'shared_storage': 'nfs', 'cpu_features': ['sse4.2']}},
    'instances': {
        'moved': {'host': 'ta', 'vcpus': 1, 'memory_mb': 512, 'power_state': 'running',
                  'disks': [{'name': 'vda', 'size_gb': 1, 'location': 'shared'}]},
        'stays': {'host': 'ta', 'vcpus': 1, 'memory_mb': 512, 'power_state': 'running',
                  'disks': [{'name': 'vda', 'size_gb': 1, 'location': 'shared'}]},
    },
}


class Bus(object):
    def __init__(self, services, engine):
        self.services = services
        self.engine = engine
        self.exchange = services.exchange

    def topic(self, name):
        return '%s-%s' % (self.exchange, name)

    def rows(self, sql):
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]

    def recorded(self):
        """What a forged request could have left: migrations, plans, maintenance."""
        return (self.rows('SELECT id, instance, state FROM migrations ORDER BY id'),
                self.rows('SELECT id FROM action_plans ORDER BY id'),
                self.rows('SELECT name, maintenance FROM hosts ORDER BY name'))

    def client(self, who, topic, server=None, timeout=10):
        """An oslo.messaging RPC client connected as ``who``'s RabbitMQ user."""
        from oslo_config import cfg
        import oslo_messaging as messaging
        from oslo_messaging import conffixture

        conf = cfg.ConfigOpts()
        conf([], project='vmmig-test', default_config_files=[])
        conffixture.ConfFixture(conf).setUp()
        conf.set_override('control_exchange', self.exchange)
        transport = messaging.get_rpc_transport(conf, url=self.services.urls[who])
        self.transports.append(transport)
        return messaging.get_rpc_client(transport, messaging.Target(
            topic=topic, server=server), timeout=timeout)

    def amqp(self, who):
        import kombu
        url = self.services.urls[who] if who != 'admin' else self.services.admin_url
        conn = kombu.Connection(url.replace('rabbit://', 'amqp://'), connect_timeout=5)
        conn.connect()
        self.connections.append(conn)
        return conn


@pytest.fixture(scope='module')
def bus():
    database = vfix.DatabaseFixture('sqlite')
    database.setUp()
    services = vfix.ServiceProcesses(
        sorted(CLUSTER['hosts']), database.url, cluster=CLUSTER, own_credentials=True,
        extra_conf={'conductor': {'reports_on_operator_topic': 'false'}})
    try:
        services.setUp()
        engine = sa.create_engine(database.url)
        b = Bus(services, engine)
        b.transports, b.connections = [], []
        yield b
        for conn in b.connections:
            conn.release()
        for transport in b.transports:
            transport.cleanup()
        engine.dispose()
    finally:
        services.cleanUp()
        database.cleanUp()


def _refused(error):
    return 'ACCESS_REFUSED' in str(error)


def test_services_run_as_their_own_users_and_a_migration_completes(bus):
    vhost = bus.exchange
    users = subprocess.run(['rabbitmqctl', '-q', '-s', 'list_connections', 'user', 'vhost'],
                           capture_output=True, text=True, check=True).stdout.split('\n')
    connected = {line.split('\t')[0] for line in users if line.endswith('\t' + vhost)}
    assert {vhost + '-conductor', vhost + '-agent-ta', vhost + '-agent-tb'} <= connected

    result = bus.services.cli('server', 'migrate', 'moved', '--host', 'tb',
                              '--live-migration', '-f', 'json', check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    queued = json.loads(result.stdout)
    deadline = time.monotonic() + 60
    while True:
        [record] = bus.rows('SELECT state, dest_host, reason FROM migrations WHERE id = %d'
                            % queued['id'])
        if record['state'] in ('completed', 'failed', 'error', 'cancelled'):
            break
        assert time.monotonic() < deadline, record
        time.sleep(0.2)
    assert (record['state'], record['dest_host']) == ('completed', 'tb'), record['reason']
    for name in ('conductor-0', 'agent-ta', 'agent-tb'):
        log = bus.services.log(name)
        assert 'ACCESS_REFUSED' not in log and 'Refused' not in log, name


@pytest.mark.parametrize('method,kwargs', [
    ('migrate_server', dict(instance='stays', migration_type='live', host='tb', options={},
                            hold_reason=None, requested_by='mallory')),
    ('host_maintenance_set', dict(host='ta', reason='forged', options={}, dry_run=False,
                                  requested_by='mallory')),
])
def test_an_agent_cannot_call_the_operators_topic(bus, method, kwargs):
    from oslo_messaging import exceptions as mexc
    before = bus.recorded()
    # An admin's context: the roles a client asserts are not what stops it.
    ctxt = {'user_name': 'mallory', 'roles': ['admin'], 'is_admin': True}
    client = bus.client('agent-ta', bus.topic('conductor'))
    with pytest.raises(mexc.MessageDeliveryFailure) as e:
        client.prepare(version='1.5').call(ctxt, method, **kwargs)
    assert _refused(e.value), e.value
    # The conductor's server by name too.
    client = bus.client('agent-ta', bus.topic('conductor'), server='conductor-0')
    with pytest.raises(mexc.MessageDeliveryFailure) as e:
        client.prepare(version='1.5').cast(ctxt, method, **kwargs)
    assert _refused(e.value), e.value
    time.sleep(1)
    assert bus.recorded() == before
    assert method not in bus.services.log('conductor-0')


def test_the_report_topic_serves_reports_only(bus):
    """An agent may publish there, and the endpoint has no operator method."""
    from oslo_messaging.rpc import client as rpc_client
    before = bus.recorded()
    client = bus.client('agent-ta', bus.topic('conductor-report'))
    ctxt = {'user_name': 'mallory', 'roles': ['admin'], 'is_admin': True}
    with pytest.raises(rpc_client.RemoteError) as e:
        client.prepare(version='1.5').call(ctxt, 'migrate_server', instance='stays',
                                           migration_type='live', host='tb', options={},
                                           hold_reason=None, requested_by='mallory')
    assert e.value.exc_type == 'NoSuchMethod', e.value
    assert bus.recorded() == before


def test_an_agent_cannot_call_nor_read_another_agent(bus):
    import amqp
    from oslo_messaging import exceptions as mexc
    client = bus.client('agent-ta', bus.topic('agent'), server='tb')
    with pytest.raises(mexc.MessageDeliveryFailure) as e:
        client.prepare(version='1.3').call({}, 'ping')
    assert _refused(e.value), e.value
    # Nor consume tb's queue, nor bind a queue of its own to tb's routing key.
    channel = bus.amqp('agent-ta').channel()
    with pytest.raises(amqp.exceptions.AccessRefused):
        channel.basic_consume(bus.topic('agent') + '.tb', callback=lambda m: None)
    channel = bus.amqp('agent-ta').channel()
    with pytest.raises(amqp.exceptions.AccessRefused):
        channel.queue_bind(bus.topic('agent') + '.ta', bus.exchange,
                           routing_key=bus.topic('agent') + '.tb')


def test_the_operators_user_cannot_call_agents_nor_report(bus):
    from oslo_messaging import exceptions as mexc
    for topic, server, method in ((bus.topic('agent'), 'ta', 'ping'),
                                  (bus.topic('conductor-report'), None, 'heartbeat')):
        client = bus.client('api', topic, server=server)
        with pytest.raises(mexc.MessageDeliveryFailure) as e:
            client.prepare(version='1.0').call({}, method)
        assert _refused(e.value), (topic, e.value)


def test_the_default_exchange_delivers_but_the_server_refuses(bus):
    """Every service that answers calls may write to the default exchange, which
    delivers to any queue by its name: the receiving RPC server refuses what came that
    way, and nothing is recorded."""
    import amqp
    from oslo_messaging._drivers import common as rpc_common
    before = bus.recorded()
    channel = bus.amqp('agent-ta').channel()
    forged = {
        'method': 'migrate_server', 'version': '1.5', 'namespace': None,
        'args': dict(instance='stays', migration_type='live', host='tb', options={},
                     hold_reason=None, requested_by='mallory'),
        '_context_roles': ['admin'], '_context_user_name': 'mallory',
        '_context_is_admin': True, '_unique_id': uuid.uuid4().hex,
    }
    ping = dict(forged, method='ping', version='1.3', args={}, _unique_id=uuid.uuid4().hex)
    for queue, message in ((bus.topic('conductor'), forged),
                           (bus.topic('agent') + '.tb', ping)):
        body = json.dumps(rpc_common.serialize_msg(message))
        channel.basic_publish(amqp.Message(body, content_type='application/json'),
                              exchange='', routing_key=queue)
    deadline = time.monotonic() + 20
    while not ('Refused migrate_server' in bus.services.log('conductor-0')
               and 'Refused ping' in bus.services.log('agent-tb')):
        assert time.monotonic() < deadline, 'no refusal logged'
        time.sleep(0.2)
    assert bus.recorded() == before
