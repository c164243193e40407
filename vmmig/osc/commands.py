"""The vmmig command's commands (vmmig.cli), on OpenStackClient: the same arguments,
the same output, the client of vmmig-api in place of the conductor's."""

import time

from vmmig.cli import hosts
from vmmig.cli import migrations
from vmmig.cli import plans
from vmmig.cli import servers


class _OnTheApi(object):
    # What the vmmig application has and the openstack one lacks (--wait's pace).
    APP_DEFAULTS = (('poll_interval', 0.5), ('sleep', time.sleep), ('clock', time.time))

    @property
    def conductor(self):
        return self.app.client_manager.vmmig

    def run(self, parsed_args):
        for name, value in self.APP_DEFAULTS:
            if not hasattr(self.app, name):
                setattr(self.app, name, value)
        return super().run(parsed_args)


def _on_the_api(command):
    return type(command.__name__, (_OnTheApi, command), {'__doc__': command.__doc__})


ServerMigrate = _on_the_api(servers.ServerMigrate)
ServerEvacuate = _on_the_api(servers.ServerEvacuate)
MigrationList = _on_the_api(migrations.MigrationList)
MigrationShow = _on_the_api(migrations.MigrationShow)
MigrationAbort = _on_the_api(migrations.MigrationAbort)
MigrationHold = _on_the_api(migrations.MigrationHold)
MigrationResume = _on_the_api(migrations.MigrationResume)
MigrationForceComplete = _on_the_api(migrations.MigrationForceComplete)
HostList = _on_the_api(hosts.HostList)
HostEligible = _on_the_api(hosts.HostEligible)
HostMaintenanceSet = _on_the_api(plans.HostMaintenanceSet)
HostMaintenanceUnset = _on_the_api(plans.HostMaintenanceUnset)
PlanList = _on_the_api(plans.PlanList)
PlanShow = _on_the_api(plans.PlanShow)
PlanExecute = _on_the_api(plans.PlanExecute)
PlanAbort = _on_the_api(plans.PlanAbort)
