"""Ansible inventory plugin `quantbot_topology`: a thin shim over quantbot_infra.topology."""

from __future__ import annotations

DOCUMENTATION = r"""
name: quantbot_topology
short_description: Quant-Bot environment topology as an inventory
description:
  - Reads C(inventories/<env>/topology.yml), validates it and expands node classes into hosts
    named C(<env>-<class>-<NN>), grouped by class (C(class_*)), role group, environment
    (C(env_*)), region (C(region_*)) and availability zone (C(az_*)).
  - The file format is documented in C(docs/topology.md); validation errors name the file and
    the field at fault.
options:
  plugin:
    description: Marks the file as a topology for this plugin.
    required: true
    choices: ['quantbot_topology']
"""

EXAMPLES = r"""
# inventories/dev/topology.yml
plugin: quantbot_topology
environment: dev
provider: local
local: {network: qb-dev, subnet: 10.240.10.0/24, ssh_port_base: 22000}
regions: [{name: local, azs: [local-a, local-b]}]
classes:
  - {name: pg, count: 2, groups: [postgresql]}
"""

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

try:
    from quantbot_infra.topology import (
        TOPOLOGY_FILENAME,
        TopologyError,
        build_inventory,
        group_name,
        load_topology,
    )
except ImportError as exc:  # pragma: no cover - depends on the controller's environment
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None


class InventoryModule(BaseInventoryPlugin):
    NAME = "quantbot_topology"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("topology.yml", "topology.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        if _IMPORT_ERROR is not None:
            raise AnsibleParserError(
                f"{path}: the quantbot_infra package is not importable ({_IMPORT_ERROR}); "
                "run 'make setup' and use the project's virtualenv"
            )
        try:
            inv = build_inventory(load_topology(path))
        except TopologyError as exc:
            raise AnsibleParserError(str(exc)) from None
        for group in inv.groups:
            self.inventory.add_group(group)
        # env > region > AZ > host: hosts join their AZ group and inherit the rest by nesting,
        # so `ansible-inventory --graph` reads as a tree
        nested = {group_name("env", inv.environment)}
        for region in inv.topology.regions:
            region_group = group_name("region", region.name)
            nested.add(region_group)
            self.inventory.add_child(group_name("env", inv.environment), region_group)
            for az in region.azs:
                if group_name("az", az) in inv.groups:
                    self.inventory.add_child(region_group, group_name("az", az))
        for host in inv.hosts:
            self.inventory.add_host(host.name)
            for group in host.groups:
                if group not in nested:
                    self.inventory.add_child(group, host.name)
            for key, value in host.vars.items():
                self.inventory.set_variable(host.name, key, value)

__all__ = ["TOPOLOGY_FILENAME", "InventoryModule"]
