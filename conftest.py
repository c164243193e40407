"""pytest's top-level conftest: plugins must be named here (pytest refuses them elsewhere).

tests.openstack.fixtures gives the functional tests a real Keystone (the `keystone` fixture)
and real Nova (the `nova_cloud` fixture).
"""

pytest_plugins = ['tests.openstack.fixtures']
