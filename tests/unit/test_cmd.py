"""The console scripts read their command lines as the README shows them."""

from unittest import mock

import pytest

from vmmig.cmd import agent as agent_cmd
from vmmig.cmd import conductor as conductor_cmd
from vmmig import conf

CONF = conf.CONF


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / 'vmmig.conf'
    path.write_text('[DEFAULT]\ntransport_url = fake://\nembedded = false\n'
                    'state_path = %s\nhost = from-the-file\n' % tmp_path)
    yield str(path)
    CONF.clear()


@pytest.mark.parametrize('module,service_class', [
    (agent_cmd, 'AgentService'), (conductor_cmd, 'ConductorService')])
def test_host_on_the_command_line_wins_over_the_file(config_file, module, service_class):
    with mock.patch.object(module.service, service_class) as service, \
            mock.patch.object(module.service, 'wait_for_signal'), \
            mock.patch.object(getattr(module, 'schema', mock.Mock()), 'version',
                              return_value='0004'):
        module.main(['--config-file', config_file, '--host', 'compute-1'])
    assert CONF.host == 'compute-1'
    assert service.return_value.start.called


def test_an_unknown_argument_is_refused_by_name(config_file, capsys):
    with pytest.raises(SystemExit):
        agent_cmd.main(['--config-file', config_file, '--hots', 'compute-1'])
    assert '--hots' in capsys.readouterr().err
