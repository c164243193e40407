"""The one check of what an HTTP request brings: path segments, query parameters and
JSON bodies, each field against the kind the conductor's RPC endpoint declares for
the argument it becomes (vmmig.arguments), so HTTP and RPC refuse the same values.

A refusal is a 400 naming the field and where it was (``body field host``); an
unknown field is refused too, naming those accepted, so that a typo is not
silently ignored.
"""

from oslo_serialization import jsonutils

from vmmig.api import errors
from vmmig import arguments as args


def endpoint_kinds(endpoint):
    """{argument: kind} that a conductor endpoint declares with @arguments.accepts."""
    return dict(endpoint.arguments)


def _refuse(where, field, reason):
    raise errors.ApiError(400, 'vmmig.invalid-field' if field else 'vmmig.malformed-body',
                          '%s%s %s' % (where, ' field %s' % field if field else '', reason))


def check(values, kinds, where, required=()):
    """``values`` (a dict) checked field by field against ``kinds`` ({field: Kind});
    returns the cleaned values of the fields given."""
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        _refuse(where, unknown[0], 'is not accepted here; accepted: %s'
                % (', '.join(sorted(kinds)) or 'none'))
    missing = [name for name in required if values.get(name) is None]
    if missing:
        _refuse(where, missing[0], 'is required')
    out = {}
    for name, value in values.items():
        try:
            out[name] = kinds[name].check(value, name)
        except args.Refused as e:
            _refuse(where, e.where, '%s (got %s)' % (e.reason, args._repr.repr(value)))
    return out


def json_body(req, kinds, required=()):
    """The request's JSON object, checked; an empty body is an empty object."""
    raw = req.body
    if not raw.strip():
        data = {}
    else:
        if req.content_type not in ('application/json', ''):
            raise errors.ApiError(415, 'vmmig.unsupported-media-type',
                                  'Send the request body as application/json, not %s'
                                  % req.content_type)
        try:
            data = jsonutils.loads(raw.decode('utf-8'))
        except UnicodeDecodeError as e:
            _refuse('request body', None, 'is not UTF-8 (%s)' % e)
        except ValueError as e:
            _refuse('request body', None, 'is not valid JSON: %s' % e)
        if not isinstance(data, dict):
            _refuse('request body', None, 'must be a JSON object, not %s'
                    % type(data).__name__)
    return check(data, kinds, 'body', required)


def query(req, kinds):
    """The query parameters, each given at most once, checked as text."""
    values = {}
    for name in req.GET.keys():
        given = req.GET.getall(name)
        if len(given) > 1:
            _refuse('query parameter', name, 'is given %d times; give it once'
                    % len(given))
        values[name] = given[0]
    return check(values, kinds, 'query parameter')


def path(route_args, kinds):
    """The variables of the route's path ({migration}, {host}), checked."""
    return check({name: route_args[name] for name in kinds}, kinds, 'path segment')
