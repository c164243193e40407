"""pytest's rootdir conftest: the OpenStack fixtures (real Keystone and Nova) for any test."""

pytest_plugins = ['tests.openstack.fixtures']
