"""What a patch run reads on a host (module_utils/qb_patch): apt's simulated upgrade, captured on
a Debian 12 machine, and needrestart's batch report."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "patch"

_spec = importlib.util.spec_from_file_location("ansible.module_utils.qb_patch",
                                               ROOT / "plugins" / "module_utils" / "qb_patch.py")
qb_patch = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = qb_patch
_spec.loader.exec_module(qb_patch)


def test_a_simulated_upgrade_lists_versions_origins_and_security():
    plan = qb_patch.parse_simulation((FIXTURES / "apt-simulate-debian12.txt").read_text())
    by_name = {u["name"]: u for u in plan["upgrades"]}
    assert list(by_name) == ["base-files", "bash", "libgcrypt20-dev", "libgcrypt20", "liblzma-dev"]
    assert by_name["bash"] == {"name": "bash", "current": "5.2.15-2+b8", "candidate": "5.2.15-2+b13",
                               "origins": ["Debian:12.15/oldstable"], "security": False, "new": False}
    # in the point release and in the security archive: a security fix
    assert by_name["libgcrypt20"]["origins"] == ["Debian:12.15/oldstable",
                                                 "Debian-Security:12/oldstable-security"]
    assert by_name["libgcrypt20"]["security"] and by_name["liblzma-dev"]["security"]
    assert plan["removals"] == []


def test_new_packages_and_removals():
    text = ("Inst linux-image-6.1.0-58-amd64 (6.1.158-1 Debian-Security:12/oldstable-security [amd64])\n"
            "Inst qb-demo-restart [1.0] (1.1 quantbot-test:qbtest [all])\n"
            "Remv linux-image-6.1.0-40-amd64 [6.1.153-1]\n")
    plan = qb_patch.parse_simulation(text)
    kernel, demo = plan["upgrades"]
    assert kernel["new"] and kernel["current"] is None and kernel["security"]
    assert demo["origins"] == ["quantbot-test:qbtest"] and not demo["security"]
    assert plan["removals"] == [{"name": "linux-image-6.1.0-40-amd64", "current": "6.1.153-1"}]
    assert qb_patch.reboot_packages(plan["upgrades"]) == ["linux-image-6.1.0-58-amd64"]
    assert qb_patch.reboot_packages(plan["upgrades"], ["qb-demo-*"]) == ["qb-demo-restart"]


def test_needrestart_batch_report():
    report = qb_patch.parse_needrestart(
        "NEEDRESTART-VER: 3.6\nNEEDRESTART-KCUR: 6.1.0-57-amd64\nNEEDRESTART-KEXP: 6.1.0-58-amd64\n"
        "NEEDRESTART-KSTA: 3\nNEEDRESTART-SVC: ssh.service\nNEEDRESTART-SVC: cron.service\n")
    assert report["kernel_running"] == "6.1.0-57-amd64" and report["kernel_expected"] == "6.1.0-58-amd64"
    assert report["kernel_pending"] and report["services"] == ["cron.service", "ssh.service"]
    quiet = qb_patch.parse_needrestart("NEEDRESTART-VER: 3.6\nNEEDRESTART-KSTA: 1\n")
    assert not quiet["kernel_pending"] and quiet["services"] == []


def test_needrestart_in_a_container_after_an_upgrade_of_zlib_and_zstd():
    # captured on the project's host container: no kernel lines (the kernel is the host's)
    report = qb_patch.parse_needrestart((FIXTURES / "needrestart-b-container.txt").read_text())
    assert report["services"] == ["ssh.service", "systemd-journald.service", "systemd-logind.service"]
    assert report["systemd_reexec"] and report["kernel_status"] == 0 and not report["kernel_pending"]


def test_services_restart_only_where_an_upgraded_package_ships_their_running_unit():
    upgrades = [{"name": "redis-server"}, {"name": "bash"}]
    files = {"redis-server": ["/lib/systemd/system/redis-server.service", "/usr/bin/redis-server"],
             "openssh-server": ["/lib/systemd/system/ssh.service"], "bash": ["/bin/bash"]}
    running = {"redis-server.service", "ssh.service"}
    assert qb_patch.restart_services(upgrades, files, running) == ["redis-server.service"]
    assert qb_patch.restart_services(upgrades, files, {"ssh.service"}) == []


def test_services_mapping_a_replaced_library_restart():
    upgrades = [{"name": "libzstd1"}, {"name": "zlib1g"}]
    files = {"libzstd1": ["/usr/lib/x86_64-linux-gnu/libzstd.so.1.5.4"],
             "zlib1g": ["/lib/x86_64-linux-gnu/libz.so.1.2.13", "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"]}
    processes = [
        {"unit": "systemd-journald.service", "paths": ["/usr/lib/x86_64-linux-gnu/libzstd.so.1.5.4"]},
        {"unit": "ssh.service", "paths": ["/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", "/usr/sbin/sshd"]},
        {"unit": "cron.service", "paths": ["/usr/sbin/cron"]},
        {"unit": None, "paths": ["/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"]},
    ]
    wanted = ["ssh.service", "systemd-journald.service"]
    assert qb_patch.services_mapping(upgrades, files, processes) == wanted


def test_the_reboot_flag_and_the_packages_that_set_it(tmp_path):
    flag = tmp_path / "reboot-required"
    assert qb_patch.reboot_flag(str(flag)) == (False, [])
    flag.touch()
    (tmp_path / "reboot-required.pkgs").write_text("qb-demo-kmod\nlinux-image-6.1.0-58-amd64\nqb-demo-kmod\n")
    assert qb_patch.reboot_flag(str(flag)) == (True, ["linux-image-6.1.0-58-amd64", "qb-demo-kmod"])


def test_without_needrestart_the_services_mapping_replaced_files_are_found(tmp_path):
    """A /proc laid out as the kernel does: qb-demo's binary was replaced by its upgrade (maps
    marks it deleted); sshd maps only current files; a user's shell is no service; a deleted
    temporary file is no replaced code."""
    def proc(pid, cgroup, maps, exe):
        d = tmp_path / str(pid)
        d.mkdir()
        (d / "cgroup").write_text(f"0::{cgroup}\n")
        lines = [f"7f00-7f01 r-xp 00000000 fe:01 {i}   {m}\n" for i, m in enumerate(maps)]
        (d / "maps").write_text("".join(lines))
        (d / "exe").symlink_to(exe)
    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    proc(10, "/system.slice/qb-demo.service", ["/usr/lib/qb-demo/qb-demo (deleted)", libc],
         "/usr/lib/qb-demo/qb-demo")
    proc(11, "/system.slice/ssh.service", ["/usr/sbin/sshd", libc], "/usr/sbin/sshd")
    proc(12, "/user.slice/user-1000.slice/session-1.scope", ["/usr/bin/bash (deleted)"], "/usr/bin/bash")
    proc(13, "/system.slice/postgresql@15-main.service", ["/tmp/PostgreSQL.1234 (deleted)"],
         "/usr/lib/postgresql/15/bin/postgres")
    (tmp_path / "self").mkdir()
    procs = qb_patch.processes(str(tmp_path))
    assert {p["unit"] for p in procs} == {"qb-demo.service", "ssh.service", "postgresql@15-main.service"}
    demo = next(p for p in procs if p["unit"] == "qb-demo.service")
    assert demo["deleted"] == ["/usr/lib/qb-demo/qb-demo"] and "/usr/lib/qb-demo/qb-demo" in demo["paths"]
    assert qb_patch.stale_services(procs) == ["qb-demo.service"]
