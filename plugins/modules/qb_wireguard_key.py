#!/usr/bin/python
"""Ansible module qb_wireguard_key: a WireGuard key pair made on the host, public half returned."""

from __future__ import annotations

DOCUMENTATION = r"""
module: qb_wireguard_key
short_description: Create (or rotate) a host's WireGuard private key and return its public key
description:
  - Makes a WireGuard private key on the managed host when it has none (with C(wg genkey)),
    in a file of mode 0600 owned by root, and returns the matching public key. The private key
    never leaves the host; it is not read back, logged or returned.
  - With I(rotate=true) a new key replaces the old one atomically; peers must then be given the
    new public key (the C(wireguard) role does that in the same run).
  - An existing key file that is not a WireGuard key stops the module (it is never overwritten
    silently); a key file with loose permissions is tightened to 0600.
options:
  path:
    description: Private key file. Its directory is created with mode 0700 when missing.
    type: path
    default: /etc/wireguard/wg0.key
  rotate:
    description: Replace the key even when one exists.
    type: bool
    default: false
requirements: [wireguard-tools (wg) on the managed host]
supports_check_mode: true
"""

EXAMPLES = r"""
- name: Make the host's WireGuard key
  qb_wireguard_key:
    path: /etc/wireguard/wg0.key
  register: wg_key
  no_log: true

- name: Rotate it
  qb_wireguard_key:
    rotate: true
"""

RETURN = r"""
public_key:
  description: The public key (base64). Null only in check mode for a key that does not exist yet.
  returned: always
  type: str
created:
  description: A key was made where there was none (or would be, in check mode).
  returned: always
  type: bool
rotated:
  description: An existing key was replaced (or would be, in check mode).
  returned: always
  type: bool
previous_public_key:
  description: The public key before a rotation.
  returned: when rotated
  type: str
"""

import contextlib
import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule


def _public_key(module, private_key):
    rc, out, _err = module.run_command([module.get_bin_path("wg", required=True), "pubkey"],
                                      data=private_key, binary_data=False)
    if rc != 0:
        return None
    return out.strip()


def _generate(module):
    rc, out, err = module.run_command([module.get_bin_path("wg", required=True), "genkey"])
    if rc != 0 or not out.strip():
        module.fail_json(msg=f"wg genkey failed: {err.strip()}")
    return out.strip()


def _write(module, path, private_key):
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".qb-wgkey-")
    try:
        os.fchmod(fd, 0o600)
        os.fchown(fd, 0, 0)
        os.write(fd, (private_key + "\n").encode())
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        module.fail_json(msg=f"cannot write {path}: {exc.strerror}")


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/wireguard/wg0.key"},
            "rotate": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    result = {"changed": False, "created": False, "rotated": False, "public_key": None}

    current = None
    if os.path.exists(path):
        try:
            with open(path, encoding="ascii") as f:
                current = f.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            module.fail_json(msg=f"cannot read the key file {path}: {exc}")
        result["public_key"] = _public_key(module, current)
        if not result["public_key"]:
            module.fail_json(msg=f"{path} exists but holds no WireGuard private key; "
                                 "move it away (or rotate=true to replace it)")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode != 0o600 and not module.check_mode:
            os.chmod(path, 0o600)
        result["changed"] = mode != 0o600

    if current is not None and not module.params["rotate"]:
        module.exit_json(**result)

    result["changed"] = True
    result["created"] = current is None
    result["rotated"] = current is not None
    if current is not None:
        result["previous_public_key"] = result["public_key"]
    before = f"public key: {result['public_key'] or '(none)'}\n"
    if module.check_mode:
        result["diff"] = {"before": before, "after": "public key: (new)\n"}
        if current is None:
            result["public_key"] = None
        module.exit_json(**result)

    new = _generate(module)
    _write(module, path, new)
    result["public_key"] = _public_key(module, new)
    result["diff"] = {"before": before, "after": f"public key: {result['public_key']}\n"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
