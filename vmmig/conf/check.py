"""The configuration checked once at start-up: every file readable, every value valid.

oslo.config converts a value only when it is first read, which in a service may
be minutes later in another thread. ``check`` reads every registered option
once, right after the command line and the files are parsed, and turns a bad
value into one InvalidOption naming the file, the section, the option, the
value and why. Sections and options no vmmig program knows (a misspelt name
is silently ignored by oslo.config) are returned as warnings naming each.
"""

import argparse
import glob
import os

from oslo_config import cfg
from oslo_config import iniparser
import sqlalchemy as sa
from stevedore import named

from vmmig import exception

# The option namespaces of the sample (etc/vmmig/vmmig-config-generator.conf): an option
# documented there is known even when this program never registers it (a conductor
# does not register the CLI's options; oslo.messaging registers its drivers' late).
NAMESPACES = ('vmmig', 'oslo.messaging', 'oslo.db', 'oslo.log', 'oslo.policy',
              'keystonemiddleware.auth_token', 'oslo.middleware.sizelimit',
              'oslo.middleware.http_proxy_to_wsgi')
#: auth_token registers the options of its [keystone_authtoken] auth_type only when
#: vmmig-api starts; these plugins' options are known beforehand.
AUTH_PLUGINS = ('password', 'v3password', 'v3applicationcredential')


class _Lines(iniparser.BaseParser):
    """oslo.config's own syntax, remembering which keys each section sets."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.section = None
        self.sections = {}

    def new_section(self, section):
        self.section = section
        self.sections.setdefault(section, {})

    def assignment(self, key, value):
        if self.section is None:
            raise self.parse_exc('an option before any [section]', self.lineno)
        self.sections[self.section][key] = '\n'.join(value)

    def parse_exc(self, msg, lineno, line=None):
        return exception.InvalidConfigFile(path=self.path, reason='line %d: %s'
                                           % (lineno, msg))


def read_file(path):
    """{section: {key: raw value}} of one file; InvalidConfigFile names what is wrong."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        raise exception.InvalidConfigFile(path=path, reason=e.strerror)
    for lineno, line in enumerate(data.split(b'\n'), 1):
        try:
            line.decode('utf-8')
        except UnicodeDecodeError as e:
            raise exception.InvalidConfigFile(
                path=path, reason='line %d is not valid UTF-8 (byte %d)' % (lineno, e.start + 1))
        if b'\0' in line:
            raise exception.InvalidConfigFile(path=path, reason='line %d contains a NUL byte'
                                              % lineno)
    parser = _Lines(path)
    parser.parse(data.decode('utf-8').splitlines())
    return parser.sections


def files_read(conf):
    """The files oslo.config read, in its order (a later one wins)."""
    files = list(conf.config_file or [])
    dirs = list(conf.config_dirs) or [d for d in conf.default_config_dirs or []
                                      if os.path.isdir(d)]
    for directory in dirs:
        files += sorted(glob.glob(os.path.join(os.path.expanduser(directory), '*.conf')))
    return files


def files_named(argv, default_config_files):
    """The files a command line names, for when oslo.config failed before saying."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--config-file', action='append', default=[])
    parser.add_argument('--config-dir', action='append', default=[])
    known, _rest = parser.parse_known_args(argv)
    files = known.config_file or list(default_config_files or [])
    for directory in known.config_dir:
        files += sorted(glob.glob(os.path.join(os.path.expanduser(directory), '*.conf')))
    return files


def _known_options(conf):
    known = {'DEFAULT': set()}
    for key in conf:
        value = conf[key]
        if isinstance(value, cfg.ConfigOpts.GroupAttr):
            known.setdefault(key, set()).update(value)
        else:
            known['DEFAULT'].add(key)
    manager = named.NamedExtensionManager('oslo.config.opts', names=NAMESPACES,
                                          on_load_failure_callback=None)
    for extension in manager:
        for group, opts in extension.plugin():
            name = getattr(group, 'name', group) or 'DEFAULT'
            names = known.setdefault(name, set())
            for opt in opts:
                names.add(opt.dest)
                for old in opt.deprecated_opts:
                    known.setdefault(old.group or name, set()).add(old.name)
    from keystoneauth1 import loading
    for plugin in AUTH_PLUGINS:
        known.setdefault('keystone_authtoken', set()).update(
            opt.dest for opt in loading.get_auth_plugin_conf_options(plugin))
    return known


def unknown_names(conf, parsed):
    """Warnings, one per section or option the files set and nothing knows."""
    known = _known_options(conf)
    warnings = []
    for path, sections in parsed:
        for section, values in sections.items():
            group = section if section == 'DEFAULT' else section.lower()
            if group not in known:
                warnings.append('%s: unknown section [%s]; its options are ignored'
                                % (path, section))
                continue
            for key in values:
                if key.replace('-', '_') not in known[group]:
                    warnings.append('%s: unknown option %s in [%s]; it is ignored'
                                    % (path, key, section))
    return warnings


def _where(parsed, group, name):
    """(file, raw value) that set ``[group] name`` last, or (None, None)."""
    found = (None, None)
    for path, sections in parsed:
        for section, values in sections.items():
            if (section if section == 'DEFAULT' else section.lower()) == group \
                    and name in values:
                found = (path, values[name])
    return found


def _bad_value(parsed, group, name, error):
    path, raw = _where(parsed, group, name)
    # oslo.config's message carries a LocationInfo repr; the conversion's own words
    # (chained as the context) are the reason an operator can act on.
    reason = str(error.__context__ or error)
    where = '[%s] %s' % (group, name)
    if path:
        where += ' in %s' % path
    return exception.InvalidOption(option=where, value=raw, reason=reason)


def read_every_option(conf, parsed):
    """Read each registered option once; the first bad value raises InvalidOption."""
    for key in sorted(conf):
        try:
            value = conf[key]
        except cfg.ConfigSourceValueError as e:
            raise _bad_value(parsed, 'DEFAULT', key, e)
        if not isinstance(value, cfg.ConfigOpts.GroupAttr):
            continue
        for name in sorted(value):
            try:
                value[name]
            except cfg.ConfigSourceValueError as e:
                raise _bad_value(parsed, key, name, e)


def check_paths(conf, parsed):
    """The state directory and an SQLite database's directory must be usable."""
    state_path = os.path.abspath(os.path.expanduser(conf.state_path))
    if os.path.exists(state_path) and not os.path.isdir(state_path):
        path, _raw = _where(parsed, 'DEFAULT', 'state_path')
        raise exception.InvalidOption(
            option='[DEFAULT] state_path' + (' in %s' % path if path else ''),
            value=conf.state_path, reason='it is a file, not a directory')
    try:
        url = sa.engine.make_url(conf.database.connection)
    except (sa.exc.ArgumentError, ValueError) as e:
        path, _raw = _where(parsed, 'database', 'connection')
        raise exception.InvalidOption(
            option='[database] connection' + (' in %s' % path if path else ''),
            value=conf.database.connection, reason=str(e))
    database = url.database
    if url.get_backend_name() == 'sqlite' and database and database != ':memory:' \
            and not database.startswith('file:'):
        directory = os.path.dirname(os.path.abspath(os.path.expanduser(database)))
        # The state directory is made right after this check; any other must exist.
        if directory != state_path and not os.path.isdir(directory):
            path, _raw = _where(parsed, 'database', 'connection')
            raise exception.InvalidOption(
                option='[database] connection' + (' in %s' % path if path else ''),
                value=conf.database.connection,
                reason='the directory %s of the SQLite database does not exist' % directory)


def check(conf):
    """Check the parsed configuration; return the warnings about unknown names."""
    parsed = [(path, read_file(path)) for path in files_read(conf)]
    read_every_option(conf, parsed)
    check_paths(conf, parsed)
    return unknown_names(conf, parsed)
