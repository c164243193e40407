"""The calls the nova backend makes to Nova: a keystoneauth1 session from [nova] and
python-novaclient at one microversion. Every answer is a dict of Nova's JSON; every
failure is one of vmmig's exceptions naming what went wrong and where."""

import logging
import threading

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from novaclient import api_versions
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

from vmmig.backends.nova import views
from vmmig import conf
from vmmig.conf import nova as nova_conf
from vmmig import exception

LOG = logging.getLogger(__name__)
CONF = conf.CONF


def _plain(resource):
    return resource.to_dict() if hasattr(resource, 'to_dict') else dict(resource)


class Nova(object):
    """One session, shared by the conductor's threads (keystoneauth1 sessions are)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._client = None

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                group = nova_conf.GROUP
                auth = ks_loading.load_auth_from_conf_options(CONF, group)
                if auth is None:
                    raise exception.NovaUnavailable(
                        where=_where(), error='[nova] auth_type is not set: vmmig has no '
                                              'credentials to ask Keystone for a token')
                session = ks_loading.load_session_from_conf_options(CONF, group, auth=auth)
                section = CONF[group]
                self._client = nova_client.Client(
                    api_versions.APIVersion(views.NOVA_API_VERSION), session=session,
                    service_type=section.service_type, interface=section.valid_interfaces,
                    region_name=section.region_name,
                    endpoint_override=section.endpoint_override)
            return self._client

    def _call(self, action, func, *args, server=None, instance=None, **kwargs):
        """``func(*args, **kwargs)`` with Nova's failures as vmmig's exceptions.

        ``action``: what was asked, in words ("live-migrate web-1"), for a refusal.
        """
        try:
            return func(*args, **kwargs)
        except ks_exc.Unauthorized as e:
            raise exception.NovaAuthFailed(user=_option('username'),
                                           auth_url=_option('auth_url'), error=e)
        except (ks_exc.ConnectionError, ks_exc.DiscoveryFailure, ks_exc.EndpointNotFound,
                ks_exc.RequestTimeout, ks_exc.GatewayTimeout) as e:
            raise exception.NovaUnavailable(where=_where(), error=e)
        except ks_exc.MissingAuthPlugin as e:
            raise exception.NovaUnavailable(
                where=_where(), error='[nova] has no credentials (auth_type and its '
                                      'options): %s' % e)
        except nova_exc.Unauthorized as e:
            raise exception.NovaAuthFailed(user=_option('username'),
                                           auth_url=_option('auth_url'), error=e)
        except nova_exc.NotFound as e:
            if server is not None:
                raise exception.ServerNotInNova(server=server, instance=instance or server,
                                                error=e)
            raise exception.NovaRefused(action=action, error=e)
        except nova_exc.ClientException as e:
            if getattr(e, 'code', 500) >= 500:
                raise exception.NovaUnavailable(where=_where(), error=e)
            raise exception.NovaRefused(action=action, error=e)

    # Inventory -------------------------------------------------------------------

    def compute_services(self):
        return [_plain(s) for s in self._call(
            'list the compute services', self.client.services.list, binary='nova-compute')]

    def hypervisors(self):
        return [_plain(h) for h in self._call(
            'list the hypervisors', self.client.hypervisors.list, detailed=True)]

    def servers(self):
        return [_plain(s) for s in self._call(
            'list the servers', self.client.servers.list, detailed=True,
            search_opts={'all_tenants': True}, limit=-1)]

    def server(self, uuid, instance=None):
        return _plain(self._call('show server %s' % uuid, self.client.servers.get, uuid,
                                 server=uuid, instance=instance))

    def migrations(self, uuid):
        """Every migration of the server (live, cold, evacuation), as os-migrations shows."""
        return [_plain(m) for m in self._call(
            'list the migrations of %s' % uuid, self.client.migrations.list,
            instance_uuid=uuid)]

    def live_migration(self, uuid, migration_id):
        """The live migration in progress with its figures, or None once it is not."""
        try:
            return _plain(self._call('show migration %s of %s' % (migration_id, uuid),
                                     self.client.server_migrations.get, uuid, migration_id))
        except exception.NovaRefused as e:
            if isinstance(e.kwargs.get('error'), nova_exc.NotFound):
                return None
            raise

    def actions(self, uuid):
        return [_plain(a) for a in self._call(
            'list the actions of %s' % uuid, self.client.instance_action.list, uuid,
            server=uuid)]

    def action(self, uuid, request_id):
        return _plain(self._call('show action %s of %s' % (request_id, uuid),
                                 self.client.instance_action.get, uuid, request_id,
                                 server=uuid))

    # Moves -------------------------------------------------------------------------

    def live_migrate(self, uuid, host, instance):
        """``host`` None: Nova's scheduler chooses; the disks' copy is Nova's choice."""
        self._call('live-migrate %s%s' % (instance, ' to %s' % host if host else ''),
                   self.client.servers.live_migrate, uuid, host, 'auto',
                   server=uuid, instance=instance)

    def migrate(self, uuid, host, instance):
        self._call('migrate %s%s' % (instance, ' to %s' % host if host else ''),
                   self.client.servers.migrate, uuid, host=host, server=uuid,
                   instance=instance)

    def confirm_resize(self, uuid, instance):
        self._call('confirm the migration of %s' % instance,
                   self.client.servers.confirm_resize, uuid, server=uuid, instance=instance)

    def revert_resize(self, uuid, instance):
        self._call('revert the migration of %s' % instance,
                   self.client.servers.revert_resize, uuid, server=uuid, instance=instance)

    def evacuate(self, uuid, host, instance):
        self._call('evacuate %s%s' % (instance, ' to %s' % host if host else ''),
                   self.client.servers.evacuate, uuid, host=host, server=uuid,
                   instance=instance)

    def abort(self, uuid, migration_id, instance):
        self._call('abort live migration %s of %s' % (migration_id, instance),
                   self.client.server_migrations.live_migration_abort, uuid, migration_id,
                   server=uuid, instance=instance)

    def force_complete(self, uuid, migration_id, instance):
        self._call('force live migration %s of %s to complete' % (migration_id, instance),
                   self.client.server_migrations.live_migrate_force_complete, uuid,
                   migration_id, server=uuid, instance=instance)

    def disable_service(self, service_id, host, reason):
        self._call('disable nova-compute on %s' % host,
                   self.client.services.disable_log_reason, service_id, reason)

    def enable_service(self, service_id, host):
        self._call('enable nova-compute on %s' % host, self.client.services.enable,
                   service_id)

    def force_down(self, service_id, host):
        self._call('force nova-compute on %s down' % host, self.client.services.force_down,
                   service_id, True)


def _option(name):
    try:
        return CONF[nova_conf.GROUP][name]
    except Exception:  # noqa: an auth plugin without this option
        return None


def _where():
    return 'compute endpoint %s, auth_url %s' % (
        _option('endpoint_override') or 'from the catalogue', _option('auth_url'))
