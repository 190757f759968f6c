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
  - With the inventory cache on (C([inventory] cache) in C(ansible.cfg)), the expanded inventory is
    kept under a fingerprint of the topology file and of the code that expands it; an entry whose
    fingerprint differs is never read, so a changed topology is never served stale.
extends_documentation_fragment:
  - inventory_cache
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
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable

try:
    from quantbot_infra.topology import (
        TOPOLOGY_FILENAME,
        TopologyError,
        fingerprint,
        inventory_data,
        load_inventory,
    )
except ImportError as exc:  # pragma: no cover - depends on the controller's environment
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None


class InventoryModule(BaseInventoryPlugin, Cacheable):
    NAME = "quantbot_topology"
    # the topology is a file of the project's own, as a YAML inventory is: its values may be
    # templates (class `vars:`), and marking them so here spares a visit of every value
    trusted_by_default = True

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("topology.yml", "topology.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        if _IMPORT_ERROR is not None:
            raise AnsibleParserError(
                f"{path}: the quantbot_infra package is not importable ({_IMPORT_ERROR}); "
                "run 'make setup' and use the project's virtualenv"
            )
        # options come from ansible.cfg and the environment: the topology file holds the topology
        self.set_options(direct={"plugin": self.NAME})
        use_cache = self.get_option("cache")
        data = None
        if use_cache:
            self.load_cache_plugin()
            key, mark = self.get_cache_key(path), fingerprint(path)
            if cache:  # false when the user asked for a refresh (--flush-cache)
                entry = self._cache.get(key)
                if isinstance(entry, dict) and entry.get("fingerprint") == mark:
                    data = entry["inventory"]
        if data is None:
            try:
                data = inventory_data(load_inventory(path))
            except TopologyError as exc:
                raise AnsibleParserError(str(exc)) from None
            if use_cache:
                self._cache[key] = {"fingerprint": mark, "inventory": data}
        self._populate(data)

    def _populate(self, data):
        for group in data["groups"]:
            self.inventory.add_group(group)
        # env > region > AZ > host, so `ansible-inventory --graph` reads as a tree; values a whole
        # class, AZ, region or environment shares are set once on that group
        for parent, child in data["nested"]:
            self.inventory.add_child(parent, child)
        for group, values in data["group_vars"].items():
            for key, value in values.items():
                self.inventory.set_variable(group, key, value)
        for name, groups, values in data["hosts"]:
            self.inventory.add_host(name)
            for group in groups:
                self.inventory.add_child(group, name)
            for key, value in values.items():
                self.inventory.set_variable(name, key, value)


__all__ = ["TOPOLOGY_FILENAME", "InventoryModule"]
