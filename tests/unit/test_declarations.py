"""What vmmig declares it uses: every exception, every storage-mode flag, every requirement."""

import inspect
import os
import re

import pytest

from vmmig import exception
from vmmig.storage import base as storage_base

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')


def _sources(skip=()):
    text = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, 'vmmig')):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith('.py') and os.path.relpath(path, ROOT) not in skip:
                with open(path) as f:
                    text.append(f.read())
    return '\n'.join(text)


EXCEPTIONS = [name for name, cls in inspect.getmembers(exception, inspect.isclass)
              if issubclass(cls, exception.VmmigException)]


@pytest.mark.parametrize('name', EXCEPTIONS)
def test_every_exception_is_used(name):
    # Raised, caught or subclassed elsewhere; a base class is used by its subclasses.
    used = re.search(r'\bexception\.%s\b' % name, _sources(skip=('vmmig/exception.py',)))
    subclassed = re.search(r'class \w+\(%s\)' % name, inspect.getsource(exception))
    assert used or subclassed, '%s is declared and never used' % name


FLAGS = [name for name, value in vars(storage_base.StorageMode).items()
         if isinstance(value, bool)]


@pytest.mark.parametrize('flag', FLAGS)
def test_every_storage_mode_flag_is_read(flag):
    readers = _sources(skip=tuple('vmmig/storage/%s' % n
                                  for n in os.listdir(os.path.join(ROOT, 'vmmig', 'storage'))))
    assert re.search(r'\.%s\b' % flag, readers), '%s is declared and never read' % flag


def test_every_oslo_requirement_is_imported():
    with open(os.path.join(ROOT, 'requirements.txt')) as f:
        names = [re.split(r'[<>=!~\[; ]', line.strip())[0] for line in f
                 if line.strip() and not line.startswith('#')]
    sources = _sources()
    for name in names:
        if name.startswith('oslo.'):
            module = name.replace('.', '_')
            assert re.search(r'(from|import) %s\b' % module, sources), \
                '%s is required and never imported' % name
