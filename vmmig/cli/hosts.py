"""`host list` and `host eligible`: where VMs can go."""

from vmmig.cli import base


def _fact(host, name):
    # The conductor may flatten the agent's facts into the record or keep them nested.
    if host.get(name) is not None:
        return host[name]
    return (host.get('facts') or {}).get(name)


def _used_of(host, used, total):
    return '%s/%s' % (_fact(host, used) or 0,
                      '?' if _fact(host, total) is None else _fact(host, total))


class HostList(base.Lister):
    """List the hypervisor hosts the agents have reported."""

    columns = ('Name', 'State', 'Maintenance', 'vCPUs (used/total)',
               'Memory MB (used/total)', 'Cluster', 'Heartbeat Age (s)')

    def take_action(self, parsed_args):
        now = self.app.clock()
        rows = []
        for host in self.conductor.host_list():
            heartbeat = host.get('last_heartbeat')
            maintenance = base.YesNoColumn(bool(host.get('maintenance')),
                                           host.get('maintenance_reason'))
            rows.append((host.get('name'), host.get('state'), maintenance,
                         _used_of(host, 'vcpus_used', 'vcpus'),
                         _used_of(host, 'memory_mb_used', 'memory_mb'),
                         _fact(host, 'cluster'),
                         None if heartbeat is None else round(max(now - heartbeat, 0), 1)))
        return self.columns, rows


class HostEligible(base.Lister):
    """For every host: could it take this VM now, and if not, every reason why not."""

    columns = ('Host', 'Eligible', 'Reasons')

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('instance', metavar='VM')
        parser.add_argument('--live-migration', action='store_true',
                            help='Check for a live migration (default: cold).')
        return parser

    def take_action(self, parsed_args):
        verdicts = self.conductor.host_eligible(
            parsed_args.instance, 'live' if parsed_args.live_migration else 'cold')
        return self.columns, [(v.get('host'), base.YesNoColumn(bool(v.get('eligible'))),
                               '; '.join(v.get('reasons') or ()))
                              for v in verdicts]


class HostSet(base.ShowOne):
    """Put a host in maintenance (out of placement), or take it out of maintenance.

    A host the HA monitor fenced stays in maintenance until it is taken out.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('host', metavar='HOST')
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument('--maintenance', metavar='REASON',
                           help='Put the host in maintenance, for this reason.')
        group.add_argument('--no-maintenance', action='store_true',
                           help='Take the host out of maintenance: it is sound again.')
        return parser

    def take_action(self, parsed_args):
        host = self.conductor.host_set_maintenance(
            parsed_args.host, not parsed_args.no_maintenance,
            reason=parsed_args.maintenance, requested_by=base.requester())
        fields = ('name', 'state', 'maintenance', 'maintenance_reason')
        return fields, tuple(host.get(f) for f in fields)
