"""High availability: the monitor that fences dead hosts and rebuilds their VMs."""
