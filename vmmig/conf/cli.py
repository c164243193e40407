from oslo_config import cfg

cli_group = cfg.OptGroup('cli', title='Command-line client',
                         help='Who the vmmig command says is asking.')

cli_opts = [
    cfg.ListOpt('roles', default=['admin'],
                help='Roles the vmmig command asserts in the request context of every call, '
                     'for the local user who runs it, in embedded mode and against a '
                     'conductor over the message bus alike (there is no Keystone to ask). '
                     'The conductor checks them against its policy (vmmig:* rules); '
                     'over the bus the conductor believes what the client says, so these '
                     'roles are only as trustworthy as the bus credentials of whoever '
                     'runs the command. Possible values: role names such as admin, '
                     'reader, member. Related: [oslo_policy] policy_file.'),
    cfg.URIOpt('api_endpoint', schemes=['http', 'https'],
               help='URL of vmmig-api (its root, as in the Keystone catalog). Set, or '
                    'with Keystone credentials in the environment (OS_AUTH_URL, '
                    'OS_CLOUD and clouds.yaml), the vmmig command calls the REST API '
                    'instead of the conductor over the message bus; with credentials '
                    'it overrides the catalog\'s endpoint. The --os-endpoint option '
                    'overrides it. Related: [api] service_type.'),
]


def register_opts(conf):
    conf.register_group(cli_group)
    conf.register_opts(cli_opts, group=cli_group)


def list_opts():
    return {cli_group: cli_opts}
