"""PCI passthrough devices a VM arriving on a host is given there: one rule for every
driver, so the simulator gives what libvirt gives."""

from vmmig import exception


def choose_free(host, vm_name, wanted, products, devices):
    """{the VM's device address: a free device of the same kind here} for each address
    of ``wanted``; ``products`` maps the VM's addresses to their kinds (vendor:product),
    ``devices`` are this host's (the facts' pci_devices). HypervisorError naming the
    kind when one has no free match: the caller holds the lock that makes the choice
    final, so no device is given twice."""
    free = [d for d in devices if d['assignable'] and not d['instance']]
    chosen = {}
    for address in wanted:
        kind = products.get(address)
        device = next((d for d in free if kind and d['product'] == kind), None)
        if device is None:
            raise exception.HypervisorError(
                host=host, reason='no free PCI passthrough device of kind %s for %s (its '
                                  'device %s)' % (kind or 'unknown', vm_name, address))
        free.remove(device)
        chosen[address] = device['address']
    return chosen
