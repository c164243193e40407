"""The versions of the API: ``GET /`` lists them, ``/v1`` is the only major one, and
within it the ``OpenStack-API-Version: vmmig 1.x`` header picks a microversion.

Microversion history:

* 1.0 - Migrations, hosts, servers and action plans: every operation of the vmmig
  command.
"""

from vmmig.api import errors

SERVICE = 'vmmig'
HEADER = 'OpenStack-API-Version'
MIN_VERSION = (1, 0)
MAX_VERSION = (1, 0)
UPDATED = '2026-12-05T00:00:00Z'


def _text(version):
    return '%d.%d' % version


def document(host_url):
    """The v1 entry of the versions document."""
    return {'id': 'v1', 'status': 'CURRENT', 'updated': UPDATED,
            'min_version': _text(MIN_VERSION), 'version': _text(MAX_VERSION),
            'links': [{'rel': 'self', 'href': host_url.rstrip('/') + '/v1/'}],
            'media-types': [{'base': 'application/json',
                             'type': 'application/vnd.openstack.vmmig-v1+json'}]}


def requested(req):
    """The microversion a request asks for (the minimum when it asks none)."""
    header = req.headers.get(HEADER)
    if not header:
        return MIN_VERSION
    wanted = None
    for item in header.split(','):
        parts = item.strip().split()
        if len(parts) == 2 and parts[0].lower() == SERVICE:
            wanted = parts[1]
    if wanted is None:
        return MIN_VERSION
    if wanted.lower() == 'latest':
        return MAX_VERSION
    try:
        major, minor = (int(x) for x in wanted.split('.'))
    except ValueError:
        raise errors.ApiError(400, 'vmmig.invalid-version',
                              'Header %s: %r is not a version (MAJOR.MINOR or latest)'
                              % (HEADER, wanted))
    if not MIN_VERSION <= (major, minor) <= MAX_VERSION:
        raise errors.ApiError(406, 'vmmig.version-not-supported',
                              'API version %s is not supported: this vmmig-api serves '
                              '%s to %s' % (wanted, _text(MIN_VERSION), _text(MAX_VERSION)))
    return (major, minor)


def header_value(version):
    return '%s %s' % (SERVICE, _text(version))
