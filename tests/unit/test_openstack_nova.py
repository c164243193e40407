"""The Nova test tooling's own checks, without Nova: the stand-ins and the refusals."""

from unittest import mock

import pytest
import requests

from tests.openstack import nova
from tests.openstack import standins


@pytest.fixture
def glance():
    server = standins.Glance().start()
    yield server
    server.stop()


@pytest.fixture
def neutron():
    server = standins.Neutron().start()
    yield server
    server.stop()


def test_glance_shows_its_image_and_schema(glance):
    image = requests.get('%s/v2/images/%s' % (glance.url, glance.image_id), timeout=5).json()
    assert (image['id'], image['status'], image['disk_format']) == (
        standins.IMAGE_ID, 'active', 'raw')
    schema = requests.get(glance.url + '/v2/schemas/image', timeout=5).json()
    # Nova tells an image's own attributes from its custom properties by the schema.
    assert set(image) <= set(schema['properties'])
    assert glance.unknown == []


def test_glance_records_what_it_does_not_know(glance):
    assert requests.get(glance.url + '/v2/images/nope', timeout=5).status_code == 404
    assert requests.delete('%s/v2/images/%s' % (glance.url, glance.image_id),
                           timeout=5).status_code == 404
    assert glance.unknown == [('GET', '/v2/images/nope'),
                              ('DELETE', '/v2/images/%s' % standins.IMAGE_ID)]


def test_neutron_lists_nothing_and_records_the_rest(neutron):
    ports = requests.get(neutron.url + '/v2.0/ports', params={'device_id': 'x'}, timeout=5)
    assert ports.json() == {'ports': []}
    assert requests.get(neutron.url + '/v2.0/security-groups',
                        timeout=5).json() == {'security_groups': []}
    assert neutron.unknown == []
    assert requests.post(neutron.url + '/v2.0/ports', json={}, timeout=5).status_code == 404
    assert neutron.unknown == [('POST', '/v2.0/ports')]


def test_start_without_the_venv_names_the_set_up(tmp_path):
    with mock.patch.object(nova, 'VENV', str(tmp_path / 'nova')):
        assert 'setup-nova.sh' in nova.venv_missing()
        with pytest.raises(nova.NovaError, match='setup-nova.sh'):
            nova.NovaCloud(computes=1, workdir=str(tmp_path)).start()


def test_a_fake_live_host_is_not_restarted(tmp_path):
    cloud = nova.NovaCloud(computes={'a': nova.FAKE, 'live': nova.FAKE_LIVE},
                           workdir=str(tmp_path))
    cloud._started.add('live')
    with pytest.raises(nova.NovaError, match='live cannot start again'):
        cloud.start_compute('live')
    with pytest.raises(KeyError, match="no compute host 'nope'"):
        cloud.start_compute('nope')
