"""Runs several keystone-manage commands in one process of Keystone's virtualenv.

Usage: <venv>/bin/python -I keystone_manage.py CONFIG_FILE JSON_LIST

Each item of the list is the argument list of one keystone-manage command, or a path: a file
created there when the commands before it have finished (so that the caller can start what
needs their results while the rest runs).

Each command goes through keystone-manage's own entry point (keystone.cmd.cli.main), as the
keystone-manage script would run it; one process instead of one per command spares the test
start-up a couple of seconds of imports per command. Not imported by the tests: it runs with
Keystone's Python, not ours.
"""

import json
import sys
import warnings


def main():
    config_file, commands = sys.argv[1], json.loads(sys.argv[2])
    warnings.simplefilter('ignore')
    from keystone.cmd import cli
    import keystone.conf

    for args in commands:
        if isinstance(args, str):
            with open(args, 'w'):
                pass
            continue
        print('--- keystone-manage %s' % args[0], flush=True)
        cli.main(argv=['keystone-manage', '--config-file', config_file] + list(args))
        # Forget the parsed command line so that the next command can be parsed.
        keystone.conf.CONF.clear()


if __name__ == '__main__':
    main()
