from oslo_config import cfg

api_group = cfg.OptGroup('api', title='REST API',
                         help='vmmig-api: the REST API in front of the conductor.')

api_opts = [
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='Address vmmig-api listens on (its own simple server, for '
                            'tests and development; a real WSGI server serving '
                            'vmmig.api.wsgi:application ignores it).'),
    cfg.PortOpt('port', default=8779,
                help='Port vmmig-api listens on; 0 picks a free one (printed at start). '
                     'Related: [api] host.'),
    cfg.StrOpt('auth_strategy', default='keystone', choices=[
        ('keystone', 'Keystone tokens checked by keystonemiddleware auth_token '
                     '([keystone_authtoken])'),
        ('noauth', 'No token: the X-User-Name and X-Roles headers are believed as sent. '
                   'Development and tests only; never on a network others reach')],
        help='How vmmig-api learns who asks.'),
    cfg.ListOpt('operator_projects', default=[],
                help='Projects (names or ids) whose users may call vmmig at all: a '
                     'request with a token scoped to another project is refused by '
                     'policy (rule operator_project) even when its roles would pass. '
                     'Empty: any project. A request without a project (vmmig\'s own CLI '
                     'and services over the message bus) passes. Read by the conductor, '
                     'which enforces the policy. Related: [oslo_policy] policy_file.'),
    cfg.StrOpt('service_type', default='vm-migration',
               help='Service type of vmmig-api in the Keystone catalog: the vmmig CLI '
                    'looks its endpoint up under it. Related: [cli] api_endpoint.'),
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(api_opts, group=api_group)


def list_opts():
    return {api_group: api_opts}
