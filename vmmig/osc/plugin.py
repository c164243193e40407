"""The osc-lib plugin hooks: OpenStackClient builds vmmig's client from its session.

``openstack vmmig migration list`` and the others call vmmig-api (service type
``vm-migration`` in the catalog, or ``--os-vmmig-endpoint``) with the session of
the ``openstack`` command: its clouds.yaml, OS_* variables and --os-* options.
"""

from osc_lib import utils

DEFAULT_API_VERSION = '1'
API_VERSION_OPTION = 'os_vmmig_api_version'
API_NAME = 'vmmig'
API_VERSIONS = {'1': 'vmmig.api.client.ApiClient'}
SERVICE_TYPE = 'vm-migration'


def make_client(instance):
    """vmmig-api's client on the ``openstack`` command's session."""
    from vmmig.api import client
    endpoint = instance.get_configuration().get('vmmig_endpoint')
    return client.ApiClient(instance.session, endpoint=endpoint or None,
                            service_type=SERVICE_TYPE, interface=instance.interface,
                            region_name=instance.region_name)


def build_option_parser(parser):
    parser.add_argument('--os-vmmig-api-version', metavar='<version>',
                        default=utils.env('OS_VMMIG_API_VERSION',
                                          default=DEFAULT_API_VERSION),
                        help='vmmig API version, default %s (env: '
                             'OS_VMMIG_API_VERSION)' % DEFAULT_API_VERSION)
    parser.add_argument('--os-vmmig-endpoint', metavar='<url>',
                        default=utils.env('OS_VMMIG_ENDPOINT'),
                        help='URL of vmmig-api, instead of the catalog\'s %s endpoint '
                             '(env: OS_VMMIG_ENDPOINT)' % SERVICE_TYPE)
    return parser
