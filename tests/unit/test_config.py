"""The configuration is checked once at start-up: a bad file or value is refused naming it."""

import os

import pytest

from tests.unit import cli as cli_tests
from vmmig import conf
from vmmig import config
from vmmig.conf import check
from vmmig import exception

CONF = conf.CONF
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def parse(tmp_path):
    """parse_args over one file holding ``text`` (bytes or str); CONF restored after."""
    state = tmp_path / 'state'

    def run(text, state_path=None):
        path = tmp_path / 'vmmig.conf'
        if isinstance(text, str):
            text = ('[DEFAULT]\nstate_path = %s\n' % (state_path or state) + text).encode()
        path.write_bytes(text)
        config.parse_args(['--config-file', str(path)], setup_logging=False)
        return str(path)

    yield run
    CONF.reset()
    CONF.clear()


BAD_VALUES = [
    ('agent', 'heartbeat_interval', 'abc', "could not convert string to float: 'abc'"),
    ('conductor', 'heartbeat_timeout', '-1', 'greater than or equal to 0.1'),
    ('conductor', 'max_concurrent_migrations', '0', 'greater than or equal to 1'),
    ('live_migration', 'timeout_action', 'explode', 'Valid values are'),
    ('live_migration', 'max_downtime', '2000001', 'less than or equal to 2e+06'),
    ('live_migration', 'bandwidth', str(2 ** 63), 'less than or equal to'),
    ('sim', 'jitter', '2', 'less than or equal to 1'),
    ('upgrade_levels', 'conductor', 'latest', "doesn't match regex"),
]


@pytest.mark.parametrize('section,option,value,why', BAD_VALUES,
                         ids=['%s.%s' % c[:2] for c in BAD_VALUES])
def test_a_bad_value_is_refused_at_start_naming_file_and_option(parse, tmp_path, section,
                                                                option, value, why):
    with pytest.raises(exception.InvalidOption) as err:
        parse('[%s]\n%s = %s\n' % (section, option, value))
    message = str(err.value)
    assert '[%s] %s' % (section, option) in message
    assert str(tmp_path / 'vmmig.conf') in message
    assert repr(value) in message and why in message
    # Refused before anything was written: not even the state directory.
    assert not (tmp_path / 'state').exists()


BAD_FILES = [
    ('invalid-utf8', b'[DEFAULT]\nhost = caf\xe9\n', 'line 2 is not valid UTF-8'),
    ('nul-byte', b'[DEFAULT]\nhost = a\x00b\n', 'line 2 contains a NUL byte'),
    ('no-assignment', b'[DEFAULT]\nhost\n', "No ':' or '=' found"),
]


@pytest.mark.parametrize('text,why', [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_an_unreadable_file_is_refused_naming_it(parse, tmp_path, text, why):
    with pytest.raises(exception.InvalidConfigFile) as err:
        parse(text)
    assert str(tmp_path / 'vmmig.conf') in str(err.value)
    assert why in str(err.value)


def test_a_state_path_that_is_a_file_is_refused(parse, tmp_path):
    (tmp_path / 'afile').write_text('x')
    with pytest.raises(exception.InvalidOption,
                       match=r'\[DEFAULT\] state_path in .*vmmig.conf.*a file, not a '
                             r'directory'):
        parse('', state_path=tmp_path / 'afile')


def test_a_database_in_a_missing_directory_is_refused(parse, tmp_path):
    with pytest.raises(exception.InvalidOption,
                       match=r'\[database\] connection in .*vmmig.conf.*does not exist'):
        parse('[database]\nconnection = sqlite:///%s/nowhere/vmmig.sqlite\n' % tmp_path)
    assert not (tmp_path / 'state').exists()


def test_the_default_database_in_a_new_state_path_is_fine(parse, tmp_path):
    parse('')
    assert (tmp_path / 'state').is_dir()


def test_misspelt_options_and_unknown_sections_are_warned_about(parse, caplog):
    path = parse('heartbeat_intervall = 3\n[agent]\nheartbeat_intervall = 3\n'
                 'heartbeat_interval = 3\n[agnet]\ntopic = x\n'
                 # Known though never registered by this program: documented options.
                 '[oslo_messaging_rabbit]\nheartbeat_rate = 3\n')
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert sorted(warnings) == sorted([
        '%s: unknown option heartbeat_intervall in [DEFAULT]; it is ignored' % path,
        '%s: unknown option heartbeat_intervall in [agent]; it is ignored' % path,
        '%s: unknown section [agnet]; its options are ignored' % path,
    ])
    assert CONF.agent.heartbeat_interval == 3


def test_the_known_namespaces_are_the_samples():
    # The key repeats, which configparser does not keep: read the lines.
    with open(os.path.join(HERE, '..', '..', 'etc', 'vmmig',
                           'vmmig-config-generator.conf')) as f:
        namespaces = [line.split('=', 1)[1].strip() for line in f
                      if line.startswith('namespace')]
    assert sorted(namespaces) == sorted(check.NAMESPACES)


def test_the_cli_prints_one_line_and_writes_nothing(tmp_path):
    result = cli_tests.run(['host', 'list'], cli_tests.FakeConductor(), tmp_path,
                           config='[agent]\nheartbeat_interval = abc\n')
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert '[agent] heartbeat_interval in %s' % (tmp_path / 'vmmig.conf') in lines[0]
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'state').exists()


def test_a_service_exits_naming_the_option(tmp_path):
    from vmmig.cmd import conductor
    path = tmp_path / 'vmmig.conf'
    path.write_text('[DEFAULT]\nstate_path = %s\n[conductor]\nheartbeat_timeout = -1\n'
                    % (tmp_path / 'state'))
    try:
        with pytest.raises(SystemExit) as err:
            conductor.main(['--config-file', str(path)])
    finally:
        CONF.reset()
        CONF.clear()
    assert str(err.value.code).startswith('vmmig-conductor: ')
    assert '[conductor] heartbeat_timeout in %s' % path in str(err.value.code)
