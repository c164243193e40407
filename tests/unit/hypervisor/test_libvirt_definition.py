"""A domain definition the agent is asked to define is held to what the VM has."""

import pytest

from vmmig.hypervisor.libvirt import definition

STORAGE = ['/var/lib/vmmig/local', '/var/lib/vmmig/instances']
ALLOWED = ['/usr/bin', '/usr/share', '/var/log/libvirt']
INSTANCE = {'name': 'vm', 'disks': [
    {'name': 'vda', 'location': 'local', 'path': '/var/lib/vmmig/local/vm.qcow2'},
    {'name': 'vdb', 'location': 'volume', 'volume': 'nbd://10.0.0.1:10809/vol-1'},
], 'pci_devices': [], 'vgpus': []}

GOOD = """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>vm</name>
  <description>copied from /etc/passwd, once</description>
  <os><type>hvm</type><kernel>/usr/share/vm/vmlinuz</kernel></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><source file='/var/lib/vmmig/local/vm.qcow2'/>
      <target dev='vda'/></disk>
    <disk type='network' device='disk'>
      <source protocol='nbd' name='vol-1'><host name='10.0.0.1' port='10809'/></source>
      <target dev='vdb'/></disk>
    <serial type='file'><source path='/var/log/libvirt/vm.log'/></serial>
    <serial type='pty'/>
    %s
  </devices>
</domain>"""


def _problems(xml, instance=INSTANCE):
    return definition.problems(xml, instance, STORAGE, ALLOWED)


def test_the_vm_s_own_definition_passes():
    assert _problems(GOOD % '') == []


HOSTILE = [
    ('disk-outside', GOOD.replace('/var/lib/vmmig/local/vm.qcow2', '/etc/shadow') % '',
     'disk vda: /etc/shadow is not under the storage paths'),
    ('disk-climbing', GOOD.replace('/var/lib/vmmig/local/vm.qcow2',
                                   '/var/lib/vmmig/local/../../../etc/shadow') % '',
     'is not under the storage paths'),
    ('new-disk', GOOD % "<disk type='file'><source file='/var/lib/vmmig/local/x'/>"
                        "<target dev='vdc'/></disk>", "its disks vda, vdb, vdc are not"),
    ('block-not-a-volume', GOOD % "<disk type='block'><source dev='/dev/sda'/>"
                                  "<target dev='vdc'/></disk>",
     "volume /dev/sda is not one of the instance's"),
    ('new-hostdev', GOOD % "<hostdev mode='subsystem' type='pci'><source>"
                           "<address domain='0' bus='0x3b' slot='0' function='0'/>"
                           "</source></hostdev>", "its PCI devices 0000:3b:00.0 are not"),
    ('usb-hostdev', GOOD % "<hostdev mode='subsystem' type='usb'><source>"
                           "<vendor id='0x1234'/></source></hostdev>",
     "a host device of type 'usb'"),
    ('qemu-commandline', GOOD.replace('</devices>', '</devices><qemu:commandline>'
                                      "<qemu:arg value='-fw_cfg'/></qemu:commandline>") % '',
     'qemu: namespace'),
    ('filesystem', GOOD % "<filesystem type='mount'><source dir='/'/>"
                          "<target dir='host'/></filesystem>",
     '<filesystem> names /, outside the allowed paths'),
    ('serial-file', GOOD % "<serial type='file'><source path='/root/.ssh/authorized_keys'/>"
                           "</serial>", '<serial> names /root/.ssh/authorized_keys'),
    ('channel-socket', GOOD % "<channel type='unix'><source mode='connect' "
                              "path='/run/libvirt/libvirt-sock'/></channel>",
     '<channel> names /run/libvirt/libvirt-sock'),
    ('emulator', GOOD.replace('/usr/bin/qemu-system-x86_64', '/tmp/evil') % '',
     '<emulator> /tmp/evil is outside'),
    ('kernel', GOOD.replace('/usr/share/vm/vmlinuz', '/tmp/vmlinuz') % '',
     '<os><kernel> /tmp/vmlinuz is outside'),
    ('other-name', GOOD.replace('<name>vm</name>', '<name>other</name>') % '',
     "it defines 'other', not 'vm'"),
    ('not-xml', '<domain', 'it is not XML'),
]


@pytest.mark.parametrize('xml,fragment', [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_hostile_definition_is_refused_with_the_reason(xml, fragment):
    found = _problems(xml)
    assert any(fragment in p for p in found), found


def test_every_reason_is_listed():
    xml = (GOOD.replace('/usr/bin/qemu-system-x86_64', '/tmp/evil')
           % "<filesystem type='mount'><source dir='/'/><target dir='h'/></filesystem>")
    assert len(_problems(xml)) == 2


class _Conn(object):
    def __init__(self):
        self.defined = []

    def defineXML(self, xml):
        self.defined.append(xml)
        raise AssertionError('defined')


@pytest.mark.parametrize('step', ['rebuild', 'cold_define'])
def test_the_driver_defines_nothing_it_refused(tmp_path, step):
    from vmmig import conf
    from vmmig import exception
    from vmmig.hypervisor.libvirt import driver as libvirt_driver
    from tests import fixtures as vfix

    fixture = vfix.ConfFixture()
    fixture.setUp()
    try:
        conf.CONF.set_override('local_storage_path', STORAGE[0], group='libvirt')
        conf.CONF.set_override('shared_storage_path', STORAGE[1], group='libvirt')
        conf.CONF.set_override('allowed_paths', ALLOWED, group='libvirt')
        driver = libvirt_driver.LibvirtDriver(conf.CONF, 'host2')
        driver.conn = _Conn()
        instance = dict(INSTANCE, power_state='shutoff', local_storage_path=STORAGE[0],
                        xml=GOOD % "<hostdev mode='subsystem' type='usb'/>")
        with pytest.raises(exception.InvalidDefinition):
            getattr(driver, step)(*([instance] if step == 'rebuild' else [instance, []]))
        assert driver.conn.defined == []
    finally:
        fixture.cleanUp()


class _Dom(object):
    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


def test_a_domain_named_against_the_rule_is_left_out_with_a_warning(caplog):
    from vmmig import conf
    from vmmig.hypervisor.libvirt import driver as libvirt_driver

    driver = libvirt_driver.LibvirtDriver(conf.CONF, 'host2')
    driver.conn = type('Conn', (), {'listAllDomains': lambda self, flags: [
        _Dom('../../etc'), _Dom('-o')]})()
    assert driver.list_instances() == []
    assert driver.list_instances() == []
    assert caplog.text.count("domain '../../etc' is not managed by vmmig") == 1
    assert "domain '-o' is not managed by vmmig: a name must not start with '-'" in caplog.text
