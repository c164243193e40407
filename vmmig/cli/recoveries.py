"""`recovery list`: what the HA monitor did about each dead host."""

from vmmig.cli import base


class RecoveryList(base.Lister):
    """List the HA recoveries, oldest first: the fencing, then each VM (by priority) with
    the evacuation that moved it or the reason it stays."""

    columns = ('ID', 'Host', 'State', 'Reason', 'VMs')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--host', metavar='HOST', help='Only the recoveries of this host.')
        return parser

    def take_action(self, parsed_args):
        rows = []
        for rec in self.conductor.recovery_list(host=parsed_args.host):
            vms = '; '.join(
                '%s (priority %s): %s' % (
                    i['instance'], i['priority'],
                    'migration %s to %s%s' % (i['migration'], i['destination'],
                                              ', ' + i['state'] if i.get('state') else '')
                    if i['migration'] is not None else 'stays: %s' % i['reason'])
                for i in rec['items'] or ())
            rows.append((rec['id'], rec['host'], rec['state'], rec['reason'], vms))
        return self.columns, rows
