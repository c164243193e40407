"""`vmmig demo`: a scripted tour of vmmig on the simulated demo cluster, embedded.

The tour is data: a list of steps, each a vmmig command line with what it
should lead to, so a test can check the outcomes in the database.
"""

import collections
import os
import shlex
import shutil
import tempfile
import textwrap

from vmmig.cli import base
from vmmig import conf
from vmmig.db import states
from vmmig import exception
from vmmig.hypervisor.sim import cluster

CONF = conf.CONF

NO_RECORD = 'no record'  # a refused request creates no migration
LAST = '{last}'  # in a command line: the id of the newest migration of the step's VM

HOST = '{host}'  # in a command line: the host the step's action cut the power of

# ``action``: a method of Demo run before the command (it may return the {host}).
Step = collections.namedtuple('Step', 'title explain command instance expect exit_code '
                                      'action')
Step.__new__.__defaults__ = (None, None, 0, None)


STEPS = [
    Step('The hosts',
         'Four simulated hosts. sim-a, sim-b and sim-c form cluster c1 and share the NFS '
         'store nfs-c1; sim-d is in cluster c2 with its own store and a newer hypervisor.',
         'host list'),
    Step('Where could web-1 go live?',
         'Every scheduler filter runs against every host; a host that cannot take the VM '
         'lists all of its reasons, not only the first.',
         'host eligible --live-migration web-1'),
    Step('Cold migration of a shut-off VM',
         'legacy-1 is shut off and its disk is local: the disk is copied, the VM defined '
         'on the destination and removed from the source. It stays off.',
         'server migrate --wait legacy-1', 'legacy-1', states.COMPLETED),
    Step('Cold migration of a suspended VM',
         'cache-1 is suspended: its saved memory image travels with its local disk and it '
         'is still suspended on the destination.',
         'server migrate --wait cache-1', 'cache-1', states.COMPLETED),
    Step('Live migration, shared storage',
         "web-1's disk is on the shared NFS store: only memory crosses the link, in "
         'pre-copy rounds until the rest fits in the allowed downtime.',
         'server migrate --live-migration --wait web-1', 'web-1',
         states.COMPLETED),
    Step('Live migration, local disk (block migration)',
         "db-1's disk is local to its host: the disk is mirrored to the destination while "
         'memory is copied, then both switch over together.',
         'server migrate --live-migration --wait db-1', 'db-1', states.COMPLETED),
    Step('Live migration, volume only',
         "app-1 boots from a volume: the volume is attached on the destination, memory is "
         'copied, the source lets go of the volume.',
         'server migrate --live-migration --wait app-1', 'app-1',
         states.COMPLETED),
    Step('Cold migration of a running VM, shut down first',
         'A cold migration moves a VM at rest; --shutdown asks the guest to shut down '
         '(and powers it off if it does not), then moves it.',
         'server migrate --shutdown --wait web-1', 'web-1', states.COMPLETED),
    Step('A migration submitted on hold',
         '--hold queues the migration but nothing moves until someone resumes it, e.g. '
         'when a change window opens.',
         "server migrate --live-migration --hold 'change window 22:00' app-1",
         'app-1', states.HELD),
    Step('What is held',
         'Held migrations wait in the queue with the reason given.',
         'migration list --state held'),
    Step('Resume it',
         'Resuming puts it back in the queue; --wait follows it to the end.',
         'migration resume --wait {last}', 'app-1', states.COMPLETED),
    Step('Another one on hold ...',
         'db-1 is queued on hold as well ...',
         "server migrate --live-migration --hold 'waiting for approval' db-1",
         'db-1', states.HELD),
    Step('... and aborted',
         'Aborting cancels the migration; the VM never left its host.',
         'migration abort --wait {last}', 'db-1', states.CANCELLED),
    Step('Where could gpu-1 go live?',
         'gpu-1 holds a PCI device passed through from its host: no host can take it '
         'live. Every host says why.',
         'host eligible --live-migration gpu-1'),
    Step('A refused live migration: PCI passthrough',
         'The conductor checks before it moves anything: the request is refused with '
         'every reason and no migration is recorded.',
         'server migrate --live-migration gpu-1', 'gpu-1', NO_RECORD, 1),
    Step('A refused live migration: another cluster',
         'sim-d is in cluster c2 and does not see the c1 storage: the request names it '
         'and is refused with all the reasons.',
         'server migrate --live-migration --host sim-d web-1', 'web-1',
         NO_RECORD, 1),
    Step('Live migration of a VM that dirties memory faster than the link',
         'batch-1 writes 3 GB/s into its memory, the link carries 1.25 GB/s: pre-copy '
         'alone never converges. With auto-converge the guest CPU is throttled step by '
         'step until the rounds shrink.',
         'server migrate --live-migration --auto-converge --wait batch-1',
         'batch-1', states.COMPLETED),
    # Host operations: a drain plan, shown before anything moves, then carried out.
    Step('Maintenance of a host, planned first',
         'sim-c needs a firmware update. --dry-run shows the plan: each VM, live or cold, '
         'where it goes, in which order, why one stays, and how long it should take; '
         'nothing is recorded.',
         "host maintenance set --dry-run --reason 'firmware update' sim-c"),
    Step('Maintenance: the host is drained',
         'sim-c leaves placement at once; its VMs move by ordinary migrations within the '
         'limits. gpu-1 runs with a passthrough device: it stays, and the plan ends '
         'partial, saying so (exit code 1).',
         "host maintenance set --wait --reason 'firmware update' sim-c", None, None, 1),
    Step('The hosts, with the drain',
         'sim-c is in maintenance, with its reason and how far its drain got.',
         'host list'),
    Step('Back in service',
         'Unset, sim-c takes VMs again.',
         'host maintenance unset sim-c'),
    Step('A host dies: automatic recovery',
         "The power of web-1's host is cut: its agent falls silent. Nobody types anything: "
         'the HA monitor of the conductor marks the host down after [conductor] '
         'heartbeat_timeout, powers it off through its fencing driver, and once the power '
         'off is confirmed records an action plan (strategy evacuate) that rebuilds its '
         'VMs elsewhere, highest HA priority first, each in its power state. A VM on a '
         'local disk cannot be rebuilt: it stays, with the reason in the plan. The host '
         'stays in maintenance until an operator says it is sound.',
         'plan list --strategy evacuate --host {host}', 'web-1', states.COMPLETED,
         action='power_cut'),
    Step('All migrations of the tour',
         'The record of every migration stays in the database.',
         'migration list'),
]


# A migration record has some thirty fields; the tour shows these (`-c` of cliff).
SHOWN_FIELDS = ('id', 'instance', 'migration_type', 'storage_mode', 'state', 'source_host',
                'dest_host', 'reason', 'hold_reason', 'options', 'bytes_total',
                'bytes_processed', 'iteration', 'downtime_ms')
_SHOW_COMMANDS = ('server migrate', 'migration resume', 'migration abort')


def expand(step, last_id, host=None):
    """The argv of a step's command line, and the argv actually run."""
    argv = shlex.split(step.command.replace(LAST, str(last_id)).replace(HOST, str(host)))
    run = list(argv)
    if step.command.startswith(_SHOW_COMMANDS):
        for field in SHOWN_FIELDS:
            run += ['-c', field]
    return argv, run


class Demo(base.Command):
    """A guided tour of vmmig on a simulated cluster, in its own fresh state."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--state-dir', metavar='DIR',
                            help="Empty directory for the demo's database and simulated "
                                 'hosts; kept afterwards. Default: a temporary directory, '
                                 'removed at the end.')
        parser.add_argument('--time-scale', type=float, metavar='FACTOR',
                            help='Let migrations take their modelled time divided by '
                                 'FACTOR (default: no real time at all).')
        return parser

    def take_action(self, parsed_args):
        if self.app.connected:
            raise exception.Invalid(reason='the demo needs its own vmmig process: '
                                           'run `vmmig demo` on its own')
        state_dir = self.prepare_state_dir(parsed_args.state_dir)
        self.configure(state_dir, parsed_args.time_scale)
        self.app.poll_interval = min(self.app.poll_interval, 0.1)
        self.say('vmmig demo: state in %s (embedded conductor and agents, simulated '
                 'hosts).' % state_dir)
        self.say('Migration records are shown with %d of their fields; `vmmig migration '
                 'show ID` has them all.\n' % len(SHOWN_FIELDS))
        failures = []
        for number, step in enumerate(STEPS, 1):
            problem = self.run_step(number, step)
            if problem:
                failures.append('step %d (%s): %s' % (number, step.title, problem))
        self.say('')
        if failures:
            self.say('%d of %d steps did not end as expected:' % (len(failures), len(STEPS)))
            for failure in failures:
                self.say('  ' + failure)
            return base.EXIT_ERROR
        self.say('All %d steps ended as expected.' % len(STEPS))
        return 0

    def prepare_state_dir(self, path):
        if path is None:
            path = tempfile.mkdtemp(prefix='vmmig-demo-')
            self.app.add_cleanup(shutil.rmtree, path, True)
            return path
        path = os.path.abspath(os.path.expanduser(path))
        if os.path.isdir(path) and os.listdir(path):
            raise exception.Invalid(reason='%s is not empty; the demo starts from a fresh '
                                           'state directory' % path)
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def configure(state_dir, time_scale=None):
        """Point everything at the demo's own state, before the services start."""
        CONF.set_override('state_path', state_dir)
        CONF.set_override('connection', 'sqlite:///' + os.path.join(state_dir, 'vmmig.sqlite'),
                          group='database')
        CONF.set_override('embedded', True)
        CONF.set_override('hypervisor', 'sim', group='drivers')
        CONF.set_override('cluster_file', cluster.DEMO_CLUSTER, group='sim')
        if time_scale:
            CONF.set_override('clock', 'scaled', group='sim')
            CONF.set_override('time_scale', time_scale, group='sim')
        else:
            CONF.set_override('clock', 'virtual', group='sim')
        CONF.set_override('dispatch_interval', 0.1, group='conductor')
        # A host silent for 5 s is dead, and the simulated fencing powers it off.
        CONF.set_override('heartbeat_interval', 0.5, group='agent')
        CONF.set_override('heartbeat_timeout', 5.0, group='conductor')
        CONF.set_override('fencing', 'sim', group='drivers')
        CONF.set_override('monitor_interval', 0.2, group='ha')

    def say(self, text):
        self.app.stdout.write(text + '\n')
        self.app.stdout.flush()

    def power_cut(self, step):
        """Cut the power of the host of the step's VM; back once its recovery ended."""
        host = next(i['host'] for i in self.conductor.instance_list()
                    if i['name'] == step.instance)
        self.say('(the power of %s is cut; waiting for the HA monitor)' % host)
        started = self.app.clock()
        self.app.services.power_cut(host)
        self.say('(recovered in %.1f s)' % (self.app.clock() - started))
        return host

    def migration_ids(self, instance):
        if instance is None:
            return []
        return sorted(m['id'] for m in self.conductor.migration_list(instance=instance))

    def run_step(self, number, step):
        """Run one step; return what went wrong, or None."""
        before = self.migration_ids(step.instance)
        self.say('== %d. %s' % (number, step.title))
        self.say(textwrap.fill(step.explain, width=78, initial_indent='   ',
                               subsequent_indent='   '))
        host = getattr(self, step.action)(step) if step.action else None
        argv, run = expand(step, before[-1] if before else None, host)
        self.say('$ vmmig ' + ' '.join(shlex.quote(a) for a in argv))
        self.app.stderr.flush()
        code = self.app.run_subcommand(run)
        self.app.stdout.flush()
        self.app.stderr.flush()

        after = self.migration_ids(step.instance)
        problems = []
        if code != step.exit_code:
            problems.append('exit code %s, expected %s' % (code, step.exit_code))
        if step.expect == NO_RECORD:
            if after != before:
                problems.append('a migration was recorded, none was expected')
            else:
                self.say('-> refused, nothing recorded (as expected)')
        elif step.expect is not None:
            state = self.conductor.migration_get(after[-1])['state'] if after else NO_RECORD
            if state != step.expect:
                problems.append('%s ended %s, expected %s'
                                % (step.instance, state, step.expect))
            else:
                self.say('-> %s (as expected)' % state)
        for problem in problems:
            self.say('!! ' + problem)
        self.say('')
        return '; '.join(problems) or None
