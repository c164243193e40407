import os
import socket

from oslo_config import cfg

host_opt = cfg.StrOpt('host', default=socket.gethostname(), sample_default='<hostname>',
                      help='Name of this host. An agent serves the hypervisor host of this '
                           'name; a conductor uses it to mark the migrations it owns. '
                           'vmmig-agent and vmmig-conductor also take it as --host.')

default_opts = [
    host_opt,
    cfg.StrOpt('state_path', default=os.path.join(os.path.expanduser('~'), '.vmmig'),
               sample_default='~/.vmmig',
               help='Directory for local state: the default SQLite database and the '
                    "simulator's host state files."),
    cfg.BoolOpt('embedded', default=None,
                help='Run the conductor and the agents inside the calling process over '
                     'an in-process transport. Unset means: embedded exactly when no '
                     'transport_url is configured. Related: transport_url, '
                     '[sim] cluster_file.'),
]


def register_opts(conf):
    conf.register_opts(default_opts)


def list_opts():
    return {'DEFAULT': default_opts}
