"""The default backend: a vmmig-agent on each hypervisor host reports it and carries
out the host steps of each migration type (vmmig/migration) over RPC."""

import logging

from vmmig.agent import rpcapi as agent_rpcapi
from vmmig.backends import base

LOG = logging.getLogger(__name__)


class AgentsBackend(base.Backend):
    name = 'agents'

    def __init__(self, conductor):
        super().__init__(conductor)
        self.agents = agent_rpcapi.AgentAPI(server_of=conductor.addresses.server_of,
                                            forget_server=conductor.addresses.forget)

    @property
    def hosts(self):
        return self.agents

    def execute(self, mtype, ctx):
        mtype.execute(ctx)

    def recover(self, mtype, ctx):
        mtype.recover(ctx)

    def abort(self, mtype, record):
        if mtype.supports_job_control:
            self._job_control(record, 'abort')
            return
        # The type cuts its host work short (a cold migration's copy); the abort is
        # recorded whatever happens here, and the type sees it between its steps.
        try:
            mtype.stop_for_abort(self.agents, record)
        except Exception:  # noqa: the request is kept in the record
            LOG.warning('Migration %s: could not stop its host work at once; it ends at '
                        'its next step', record['id'], exc_info=True)

    def force_complete(self, record):
        return self._job_control(record, 'force-complete')

    def _job_control(self, record, action):
        if not self.agents.job_control(record['source_host'], record['id'], action):
            LOG.info('Migration %s: no job on %s yet; the request is kept in the record',
                     record['id'], record['source_host'])
            return False
        return True
