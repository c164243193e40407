"""The default policy of every conductor endpoint, one module per area.

The ``oslo.policy.policies`` entry point lists them for oslopolicy-sample-generator.
"""

import itertools

from vmmig.policies import base
from vmmig.policies import hosts
from vmmig.policies import migrations
from vmmig.policies import plans


def list_rules():
    return list(itertools.chain(base.list_rules(), migrations.list_rules(),
                                hosts.list_rules(), plans.list_rules()))
