"""``openstack vmmig ...``: the vmmig commands as an OpenStackClient (osc-lib) plugin."""
