"""Nova's JSON as its API answers an admin at the microversions the nova backend uses.

Filled in from Nova 34.0.0's own API samples (nova/tests/functional/api_sample_tests/
api_samples: os-rescue/v2.87 server-get, os-hypervisors/v2.53 detail, os-services/
v2.69, os-migrations/v2.80, server-migrations/v2.80 migrations-get,
os-instance-actions/v2.84), with the admin-only OS-EXT-SRV-ATTR fields a server
shows an admin. Each function returns a fresh copy to change.
"""

import copy

SERVER_ID = '9168b536-cd40-4630-b43f-b259807c6e87'
VOLUME_ID = 'a26887c6-c47b-4654-abb5-dfadf7d3f803'

_SERVER = {
    "OS-DCF:diskConfig": "AUTO",
    "OS-EXT-AZ:availability_zone": "nova",
    "OS-EXT-SRV-ATTR:host": "compute1",
    "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute1",
    "OS-EXT-SRV-ATTR:instance_name": "instance-00000001",
    "OS-EXT-STS:power_state": 1,
    "OS-EXT-STS:task_state": None,
    "OS-EXT-STS:vm_state": "active",
    "OS-SRV-USG:launched_at": "2026-12-05T07:20:01.000000",
    "OS-SRV-USG:terminated_at": None,
    "accessIPv4": "",
    "accessIPv6": "",
    "addresses": {},
    "config_drive": "",
    "created": "2026-12-05T07:19:58Z",
    "description": None,
    "flavor": {"disk": 1, "ephemeral": 0, "extra_specs": {}, "original_name": "m1.tiny",
               "ram": 512, "swap": 0, "vcpus": 1},
    "hostId": "2091634baaccdc4c5a1d57069c833e402921df696b7f970791b12ec6",
    "id": SERVER_ID,
    "image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b",
              "links": [{"href": "http://openstack.example.com/images/70a599e0",
                         "rel": "bookmark"}]},
    "key_name": None,
    "links": [],
    "locked": False,
    "locked_reason": None,
    "metadata": {},
    "name": "web-1",
    "os-extended-volumes:volumes_attached": [],
    "security_groups": [{"name": "default"}],
    "server_groups": [],
    "status": "ACTIVE",
    "tags": [],
    "tenant_id": "6f70656e737461636b20342065766572",
    "trusted_image_certificates": None,
    "updated": "2026-12-05T07:20:01Z",
    "user_id": "fake",
    "progress": 0,
}

_HYPERVISOR = {
    "cpu_info": {"arch": "x86_64", "model": "Nehalem", "vendor": "Intel",
                 "features": ["pge", "clflush"],
                 "topology": {"cores": 1, "threads": 1, "sockets": 4}},
    "current_workload": 0,
    "state": "up",
    "status": "enabled",
    "disk_available_least": 0,
    "host_ip": "192.168.1.135",
    "free_disk_gb": 1028,
    "free_ram_mb": 7680,
    "hypervisor_hostname": "compute1",
    "hypervisor_type": "fake",
    "hypervisor_version": 1000,
    "id": "b1e43b5f-eec1-44e0-9f10-7b4945c0226d",
    "local_gb": 1028,
    "local_gb_used": 0,
    "memory_mb": 8192,
    "memory_mb_used": 512,
    "running_vms": 0,
    "service": {"host": "compute1", "id": "22c1a1e9-2d39-4b4e-8b0a-4b2d6c31c7d8",
                "disabled_reason": None},
    "vcpus": 2,
    "vcpus_used": 0,
}

_SERVICE = {
    "id": "22c1a1e9-2d39-4b4e-8b0a-4b2d6c31c7d8",
    "binary": "nova-compute",
    "disabled_reason": None,
    "host": "compute1",
    "state": "up",
    "status": "enabled",
    "updated_at": "2026-12-05T07:20:02.000000",
    "forced_down": False,
    "zone": "nova",
}

_MIGRATION = {
    "created_at": "2026-12-05T07:21:02.000000",
    "dest_compute": "compute2",
    "dest_host": "1.2.3.4",
    "dest_node": "compute2",
    "id": 4,
    "instance_uuid": SERVER_ID,
    "new_instance_type_id": 1,
    "old_instance_type_id": 1,
    "source_compute": "compute1",
    "source_node": "compute1",
    "migration_type": "live-migration",
    "status": "running",
    "updated_at": "2026-12-05T07:21:03.000000",
    "uuid": "42341d4b-346a-40d0-83c6-5f4f6892b650",
    "user_id": "78348f0e-97ee-4d70-ad34-189692673ea2",
    "project_id": "9842f0f7-1229-4355-afe7-15ebdbb8c3d8",
}

_SERVER_MIGRATION = {
    "created_at": "2026-12-05T07:21:02.000000",
    "dest_compute": "compute2",
    "dest_host": "1.2.3.4",
    "dest_node": "compute2",
    "id": 4,
    "server_uuid": SERVER_ID,
    "source_compute": "compute1",
    "source_node": "compute1",
    "status": "running",
    "memory_total_bytes": 123456,
    "memory_processed_bytes": 12345,
    "memory_remaining_bytes": 111111,
    "disk_total_bytes": 234567,
    "disk_processed_bytes": 23456,
    "disk_remaining_bytes": 211111,
    "updated_at": "2026-12-05T07:21:03.000000",
    "uuid": "42341d4b-346a-40d0-83c6-5f4f6892b650",
    "user_id": "8dbaa0f0-ab95-4ffe-8cb4-9c89d2ac9d24",
    "project_id": "5f705771-3aa9-4f4c-8660-0d9522ffdbea",
}

_FAILED_ACTION = {
    "action": "live-migration",
    "instance_uuid": SERVER_ID,
    "request_id": "req-3293a3f1-b44c-4609-b8d2-d81b105636b8",
    "user_id": "admin",
    "project_id": "vmmig",
    "start_time": "2026-12-05T07:21:02.000000",
    "updated_at": "2026-12-05T07:21:03.000000",
    "message": "Error",
    "events": [
        {"event": "conductor_live_migrate_instance",
         "start_time": "2026-12-05T07:21:02.000000",
         "finish_time": "2026-12-05T07:21:03.000000",
         "result": "Error",
         "traceback": "Traceback (most recent call last): ...",
         "host": "controller",
         "hostId": "a8c6d5ff3b07e6f6a3d5b1c6bb3e0aa5d5f1c1b6c8a1b3e3c1d2e0f5",
         "details": "No valid host was found. There are not enough hosts available."},
    ],
}


def server(**changes):
    return dict(copy.deepcopy(_SERVER), **changes)


def hypervisor(**changes):
    return dict(copy.deepcopy(_HYPERVISOR), **changes)


def service(**changes):
    return dict(copy.deepcopy(_SERVICE), **changes)


def migration(**changes):
    return dict(copy.deepcopy(_MIGRATION), **changes)


def server_migration(**changes):
    return dict(copy.deepcopy(_SERVER_MIGRATION), **changes)


def failed_action(**changes):
    return dict(copy.deepcopy(_FAILED_ACTION), **changes)
