"""Lookup `qb_secrets`: a thin shim over quantbot_infra.secrets.resolve."""

from __future__ import annotations

DOCUMENTATION = r"""
name: qb_secrets
short_description: Secrets by name, from Vault or generated once on the controller
description:
  - Returns one dictionary name -> secret. A name found in O(provided) takes that value; any
    other is read from O(directory)/<name>, which is created (mode 0600) with a random value
    when missing and O(generate) is true. With O(generate) false a missing name is an error.
options:
  _terms:
    description: Names of the secrets.
    required: true
  provided:
    description: Secrets given by the inventory (normally from Ansible Vault).
    type: dict
    default: {}
  directory:
    description: Controller directory for generated secrets.
    type: path
  generate:
    description: Generate missing secrets.
    type: bool
    default: true
  length:
    description: Length of a generated secret.
    type: int
    default: 32
"""

RETURN = r"""
_raw:
  description: One dictionary of name -> secret.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from quantbot_infra.secrets import SecretError, resolve


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        names = []
        for term in terms:
            names.extend(term if isinstance(term, list) else [term])
        try:
            return [resolve(names, self.get_option("provided"), self.get_option("directory"),
                            self.get_option("generate"), self.get_option("length"))]
        except (SecretError, OSError) as exc:
            raise AnsibleLookupError(f"qb_secrets: {exc}") from None
