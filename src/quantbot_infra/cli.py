"""`quantbot-infra` command line. It only builds playbook calls; the work is in playbooks."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from quantbot_infra import __version__, drift, local, patching, paths, status, vm
from quantbot_infra.aws.session import AwsError
from quantbot_infra.runner import RunError, RunResult, run_playbook
from quantbot_infra.topology import Inventory, TopologyError, load_inventory


class Progress:
    """Prints one line per task and per failure while a playbook runs (to stderr)."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tasks = 0
        self.started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        elapsed = time.monotonic() - self.started
        if kind == "playbook_on_play_start":
            self._print(f"[{elapsed:6.1f}s] PLAY {data.get('play', '')}")
        elif kind == "playbook_on_task_start":
            self.tasks += 1
            self._print(f"[{elapsed:6.1f}s]   task {self.tasks}: {data.get('task', '')}")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            msg = (data.get("res") or {}).get("msg", "failed")
            self._print(f"[{elapsed:6.1f}s]   FAILED {data.get('host')}: {msg}")
        elif kind == "runner_on_unreachable":
            msg = (data.get("res") or {}).get("msg", "unreachable")
            self._print(f"[{elapsed:6.1f}s]   UNREACHABLE {data.get('host')}: {msg}")

    def step(self, name: str) -> None:
        self._print(f"== {name}")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _recap(result: RunResult) -> str:
    lines = [f"{'host':<24} {'ok':>4} {'changed':>8} {'failed':>7} {'unreach':>8} {'skipped':>8}"]
    for host, s in result.hosts.items():
        lines.append(f"{host:<24} {s.ok:>4} {s.changed:>8} {s.failed:>7} "
                     f"{s.unreachable:>8} {s.skipped:>8}")
    for f in result.failed_tasks:
        lines.append(f"FAILED {f.host}: {f.task}: {f.message}")
    if result.error:
        lines = [f"error: {result.error}"]
    lines.append(f"{result.playbook}: {result.status} (rc={result.rc}) in {result.duration:.1f}s;"
                 f" artifacts: {result.artifact_dir}")
    return "\n".join(lines)


def _parse_extra_vars(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise RunError(f"--extra-vars {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_run(args: argparse.Namespace) -> int:
    progress = None if args.json else Progress()
    result = run_playbook(
        args.playbook, args.env, limit=args.limit, tags=args.tags, skip_tags=args.skip_tags,
        extra_vars=_parse_extra_vars(args.extra_vars), check=args.check, diff=args.diff,
        inventory=args.inventory, on_event=progress,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(_recap(result))
    return 0 if result.ok else 2


def _patch_plan_text(plan: dict) -> str:
    scope = "security updates only" if plan["security_only"] else "all updates"
    lines = [f"patch plan for {plan['env']} ({scope}, reboot {plan['reboot']}):"]
    for batch in plan["batches"]:
        what = batch["kind"] + (f", {batch['action']}" if batch["action"] else "")
        lines.append(f"batch {batch['index']} ({what}, class {batch['class']}):")
        for name in batch["hosts"]:
            host = plan["hosts"][name]
            reboot = host["reboot"]
            due = ("yes: " + (" ".join(reboot["predicted"]) or "already pending")
                   if reboot["predicted"] or reboot["pending"] else "no")
            lines.append(f"  {name}: {len(host['upgrades'])} package(s); reboot {due}; "
                         f"restarts {' '.join(host['restarts']) or 'none'}")
            lines += [f"    {u['name']} {u['current'] or '(new)'} -> {u['candidate']}"
                      f"{'  [security]' if u['security'] else ''}" for u in host["upgrades"]]
    if plan["up_to_date"]:
        lines.append("up to date: " + " ".join(plan["up_to_date"]))
    lines += [f"warning: {w}" for w in plan["warnings"]]
    return "\n".join(lines)


def cmd_patch(args: argparse.Namespace) -> int:
    extra: dict[str, Any] = {"patch_plan_only": args.plan, "patch_security_only": args.security_only,
                             "patch_reboot": args.reboot, "patch_resume": args.resume}
    if args.override_freeze:
        if not args.reason or len(args.reason.strip()) < 10:
            raise RunError("--override-freeze needs --reason \"...\" (at least 10 characters saying why)")
        extra.update(patch_override_freeze=True, patch_override_reason=args.reason.strip())
    if args.at:
        extra["patch_now"] = args.at
    if args.origin:
        extra["patch_origins"] = args.origin
    if args.canary:
        extra["patch_canary"] = args.canary
    progress = None if args.json else Progress()
    result = run_playbook("patch", args.env, limit=args.limit, extra_vars=extra,
                          inventory=args.inventory, on_event=progress)
    plan = next((f["patch_plan"] for f in result.facts.values() if "patch_plan" in f), None)
    outcome = None
    if plan and not args.plan:
        stored = patching.read_run(paths.state_dir(args.env))
        if stored and stored[0].get("made") == plan.get("made"):
            run_plan, records = stored
            outcome = {"summary": patching.summary(run_plan, records), "records": records,
                       "resume": patching.resume_point(run_plan, records),
                       "switchovers": patching.switchovers(result.facts)}
    if args.json:
        print(json.dumps({"plan": plan, **(outcome or {}), "run": result.to_dict()}, indent=2))
    else:
        if plan:
            print(_patch_plan_text(plan))
        if outcome:
            print(_patch_summary_text(outcome))
        print(_recap(result))
    return 0 if result.ok else 2


def _patch_summary_text(outcome: dict) -> str:
    s = outcome["summary"]
    lines = [f"patch run: {s['result']}; patched {len(s['hosts_patched'])}, failed "
             f"{len(s['hosts_failed'])}, not reached {len(s['hosts_not_reached'])}; rebooted: "
             f"{' '.join(s['rebooted']) or 'none'}; {s['packages_changed']} package version(s) changed"]
    for sw in outcome.get("switchovers", []):
        if "rto_seconds" in sw:
            lines.append(f"PostgreSQL switchover {sw['old_primary']} -> {sw['new_primary']}: RTO "
                         f"{sw['rto_seconds']} s, {sw['rpo_rows']} committed rows and "
                         f"{sw['rpo_transactions']} transactions lost")
        else:
            lines.append(f"Redis failover {sw['from']} -> {sw['to']}: {sw['seconds']} s")
    by_host = {r["host"]: r for r in outcome["records"]}
    for b in s["batches"]:
        wall = f"{b['wall_s']} s" if b["wall_s"] is not None else "-"
        what = b["kind"] + (f", {b['action']}" if b["action"] else "")
        lines.append(f"batch {b['index']} ({what}): {b['result']}, {wall}: {' '.join(b['hosts'])}")
        for name in b["hosts"]:
            r = by_host.get(name)
            if r and r["result"] != "patched":
                lines.append(f"  {name} FAILED: {r['why']}")
    if outcome["resume"]:
        lines.append(f"resume point: {len(outcome['resume']['left'])} host(s) left; fix the cause, then "
                     "run again with --resume")
    return "\n".join(lines)


def _drift_text(env: str, report: dict) -> str:
    counts = {k: sum(c[k] for c in report["hosts"].values())
              for k in ("changed", "unknown", "accepted", "failed", "unreachable")}
    touched = sum(1 for c in report["hosts"].values() if any(c.values()))
    lines = [f"drift in {env}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n) if touched
             else f"drift in {env}: none on {len(report['hosts'])} host(s)"]
    for entry in report["entries"]:
        label = f"{entry['role']} : {entry['task']}" if entry["role"] else entry["task"]
        state = entry["state"].upper()
        why = (f" ({entry['accepted']['reason']}, until {entry['accepted']['expires']})"
               if "accepted" in entry else "")
        lines.append(f"{entry['host']}  {label}  {state}{why}")
        if entry["state"] != "accepted" and entry.get("detail"):
            lines += ["    " + line for line in entry["detail"].splitlines()]
    lines += [f"note: {n}" for n in report["notes"]]
    lines.append(f"status: {report['status']} (exit {report['exit_code']})")
    return "\n".join(lines)


def cmd_drift(args: argparse.Namespace) -> int:
    inventory = args.inventory or paths.inventory_dir(args.env)
    accepted_file = Path(args.accepted) if args.accepted else Path(inventory) / "drift-accepted.yml"
    accepted = []
    if accepted_file.exists():
        accepted = drift.load_accepted(accepted_file.read_text(), str(accepted_file))
    elif args.accepted:
        raise RunError(f"--accepted {args.accepted}: no such file")
    events: list[dict[str, Any]] = []
    progress = None if args.json else Progress()

    def collect(event: dict[str, Any]) -> None:
        events.append(event)
        if progress:
            progress(event)

    result = run_playbook("site", args.env, limit=args.limit, check=True, diff=True,
                          inventory=args.inventory, on_event=collect)
    if result.error:
        raise RunError(result.error)
    report = drift.report(events, accepted, secrets=drift.known_secrets(paths.state_dir(args.env)),
                          hosts=list(result.hosts))
    reached = [h for h, c in report["hosts"].items() if not c["unreachable"] and h in result.hosts]
    if reached and not args.no_metric:
        stamp = time.time()
        recorded = run_playbook(
            "drift_record", args.env, limit=",".join(reached), inventory=args.inventory,
            extra_vars={"drift_textfiles": {h: drift.textfile(report["hosts"][h], stamp) for h in reached}})
        if not recorded.ok:
            report["notes"].append(f"the drift metric was not written on every host: {recorded.status}")
            report["exit_code"] = max(report["exit_code"], drift.ERROR)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_drift_text(args.env, report))
    return report["exit_code"]


def _inventory_rows(inv: Inventory) -> list[dict[str, Any]]:
    rows = []
    for h in inv.hosts:
        row = {"host": h.name, "class": h.node_class, "groups": list(h.groups),
               "role_groups": list(h.role_groups), "region": h.region, "az": h.az}
        if "ansible_host" in h.vars:
            row["ssh"] = f"{h.vars['ansible_host']}:{h.vars.get('ansible_port', 22)}"
            row["private_ip"] = h.vars["qb_private_ip"]
        if "qb_ssh_bastion" in h.vars:
            row["via"] = h.vars["qb_ssh_bastion"]
        rows.append(row)
    return rows


def cmd_inventory(args: argparse.Namespace) -> int:
    inv = load_inventory(args.inventory or paths.inventory_dir(args.env))
    rows = _inventory_rows(inv)
    if args.json:
        print(json.dumps({"environment": inv.environment, "provider": inv.topology.provider,
                          "hosts": rows,
                          "groups": {g: list(h) for g, h in inv.groups.items()}}, indent=2))
        return 0
    print(f"environment {inv.environment} (provider {inv.topology.provider}): "
          f"{len(rows)} hosts")
    for r in rows:
        extra = f"  ssh {r['ssh']}  ip {r['private_ip']}" if "ssh" in r else "  (no address yet)"
        extra += f"  via {r['via']}" if "via" in r and "ssh" in r else ""
        print(f"  {r['host']:<24} {r['az']:<14} {','.join(r['role_groups']) or '-':<28}{extra}")
    return 0


def _summary(res: local.UpResult) -> str:
    inv = res.inventory
    verify = dict(res.steps).get("verify")
    lines = [f"environment {inv.environment}: {len(inv.hosts)} hosts"]
    lines.append(f"  {'host':<22} {'roles':<28} {'ssh':<17} {'private ip':<14} "
                 f"{'ok':>3} {'chg':>4} {'fail':>4}  time source")
    converge = dict(res.steps).get("converge")
    for h in inv.hosts:
        s = converge.hosts.get(h.name) if converge else None
        report = verify.facts.get(h.name, {}) if verify else {}
        roles = ",".join(["base", *h.role_groups])
        ssh = f"127.0.0.1:{h.vars.get('ansible_port')}"
        ok, chg, fail = (s.ok, s.changed, s.failed + s.unreachable) if s else ("-", "-", "-")
        clock = report.get("chrony_reference", "-")
        lines.append(f"  {h.name:<22} {roles:<28} {ssh:<17} {h.vars.get('qb_private_ip', ''):<14} "
                     f"{ok:>3} {chg:>4} {fail:>4}  {clock}")
    endpoints = [(h.name, e) for h in inv.hosts
                 for e in (verify.facts.get(h.name, {}).get("endpoints", []) if verify else [])]
    if endpoints:
        lines.append("endpoints (on the environment's network):")
        lines += [f"  {name:<22} {e}" for name, e in endpoints]
    tunnels = [(h.name, verify.facts.get(h.name, {}).get("tunnel")) for h in inv.hosts] if verify else []
    tunnels = [(name, t) for name, t in tunnels if t]
    if tunnels:
        lines.append("tunnels (WireGuard, peers with a handshake in the last 3 minutes):")
        lines += [f"  {name:<22} {t}" for name, t in tunnels]
    for step, run in res.steps:
        lines.append(f"{step:<10} {run.status:<10} changed={run.changed:<4} "
                     f"{run.duration:7.1f}s  {run.artifact_dir}")
        for f in run.failed_tasks:
            lines.append(f"  FAILED {f.host}: {f.task}: {f.message}")
    lines.append(f"ssh: ssh -i .state/{inv.environment}/ssh/id_ed25519 -p PORT ansible@127.0.0.1")
    lines += _monitoring_summary(inv)
    return "\n".join(lines)


def _monitoring_summary(inv: Inventory) -> list[str]:
    """Where Prometheus and Alertmanager answer (admin login), and how many targets are up."""
    try:
        url = status.prometheus_url(inv)
    except status.StatusError:
        return []
    lines = [f"prometheus: {url}  alertmanager: {url.rsplit(':', 1)[0]}:9093  "
             f"(login admin, password in .state/{inv.environment}/secrets/monitoring/)"]
    # right after a converge some targets are discovered but not scraped yet: give them a few
    # scrape intervals before counting
    deadline = time.monotonic() + 60
    try:
        password = status.password_file(inv.environment).read_text().strip()
    except status.StatusError as exc:
        return [*lines, f"targets: unknown ({exc})"]
    while True:
        try:
            fleet = status.query(url, password)
        except status.StatusError as exc:
            return [*lines, f"targets: unknown ({exc})"]
        if not fleet.targets_pending or time.monotonic() > deadline:
            break
        time.sleep(5)
    pending = f" ({len(fleet.targets_pending)} not scraped yet)" if fleet.targets_pending else ""
    return [*lines, f"targets up {fleet.targets_up}/{fleet.targets_total}{pending}; "
                    f"firing alerts: {len(fleet.alerts)}"]


def _env_of(args: argparse.Namespace) -> str:
    env = getattr(args, "env_opt", None) or args.env
    if getattr(args, "env_opt", None) and args.env not in (None, args.env_opt):
        raise paths.ProjectError(f"two environments given: {args.env!r} and --env {args.env_opt!r}")
    return env or "dev"


def _provider(env: str, inventory: Path | None) -> str:
    return load_inventory(inventory or paths.inventory_dir(env)).topology.provider


def _session(args: argparse.Namespace):
    from quantbot_infra.aws.session import Session

    return Session(endpoint_url=args.endpoint_url, profile=args.profile)


def _say(line: str) -> None:
    print(f"== {line}", file=sys.stderr, flush=True)


def _ask(question: str, expected: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} ").strip() == expected
    except EOFError:
        return False


def cmd_plan(args: argparse.Namespace) -> int:
    from quantbot_infra.aws import provider

    env = _env_of(args)
    from quantbot_infra.aws.spec import monthly_usage, render_usage

    planned = provider.make_plan(env, _session(args), args.inventory, None if args.json else _say)
    usage = monthly_usage(planned.wanted)
    if args.json:
        print(json.dumps({**planned.plan.to_dict(), "monthly_usage": usage}, indent=2))
    else:
        print(planned.plan.render())
        print(render_usage(usage))
    return 0


def _cloud_up(args: argparse.Namespace, env: str) -> int:
    from quantbot_infra.aws import provider

    started = time.monotonic()
    sess = _session(args)
    planned = provider.make_plan(env, sess, args.inventory, _say)
    plan = planned.plan
    print(plan.render())
    if plan.changes and not args.yes:
        gone = [s.name for s in plan.of("destroy") if s.kind == "instance"]
        question = (f"apply this plan to {env}? It destroys {len(gone)} instance(s): {', '.join(gone)}. "
                    f"Type the environment's name to go on:" if gone else
                    f"apply this plan to {env}? Type 'yes' to go on:")
        if not _ask(question, env if gone else "yes"):
            print("not applied: nothing was changed (confirm at the prompt, or pass --yes)", file=sys.stderr)
            return 2
    if not plan.changes:
        print(f"{env}: nothing to change")
    result, state = provider.apply_plan(sess, planned, args.inventory, _say)
    print(f"up {env}: {len(result.done) if plan.changes else 0} resource(s) changed in "
          f"{time.monotonic() - started:.1f}s; provisioned state: {state}")
    for line in result.kept:
        print(f"  kept: {line}")
    return 0 if result.complete else 3


def _cloud_down(args: argparse.Namespace, env: str) -> int:
    from quantbot_infra.aws import provider

    started = time.monotonic()
    sess = _session(args)
    plan, obs = provider.plan_destroy(env, sess, args.inventory, delete_backups=args.delete_backups)
    print(plan.render())
    if args.confirm != env:
        print(f"not destroyed: nothing was changed; 'down' destroys {env} only with --confirm {env}",
              file=sys.stderr)
        return 2
    result = provider.destroy(env, sess, plan, obs, args.inventory, _say)
    print(f"down {env}: {len(result.done)} resource(s) destroyed in {time.monotonic() - started:.1f}s")
    for line in result.kept:
        print(f"  kept: {line}")
    # the backup bucket is kept on purpose; anything else kept is held by a foreign resource
    kept = [s for s in plan.of("keep") if s.kind != "bucket"]
    return 0 if result.complete and not kept else 3


def cmd_up(args: argparse.Namespace) -> int:
    env = _env_of(args)
    if _provider(env, args.inventory) == "aws":
        return _cloud_up(args, env)
    args.env = env
    progress = None if args.json else Progress()
    started = time.monotonic()
    res = local.up(args.env, on_event=progress, on_step=progress.step if progress else None,
                   inventory=args.inventory)
    if args.json:
        print(json.dumps({"ok": res.ok, "duration": round(time.monotonic() - started, 1),
                          "hosts": _inventory_rows(res.inventory),
                          "steps": {s: r.to_dict() for s, r in res.steps}}, indent=2))
    else:
        print(_summary(res))
        print(f"up {'succeeded' if res.ok else 'FAILED'} in {time.monotonic() - started:.1f}s")
    return 0 if res.ok else 2


def cmd_down(args: argparse.Namespace) -> int:
    env = _env_of(args)
    if _provider(env, args.inventory) == "aws":
        return _cloud_down(args, env)
    args.env = env
    result = local.down(args.env, on_event=None if args.json else Progress(),
                        inventory=args.inventory)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"down {args.env}: {result.status} in {result.duration:.1f}s")
    return 0 if result.ok else 2


def cmd_status(args: argparse.Namespace) -> int:
    url = args.prometheus or status.prometheus_url(load_inventory(paths.inventory_dir(args.env)))
    password_file = Path(args.password_file) if args.password_file else status.password_file(args.env)
    fleet = status.query(url, password_file.read_text().strip())
    if args.json:
        print(json.dumps(fleet.to_dict(), indent=2))
    else:
        print(status.render(fleet))
    # 0: every target up and nothing critical firing
    critical = any(a["severity"] == "critical" for a in fleet.alerts)
    return 0 if not fleet.targets_down and not critical else 3


def _shape(text: str) -> vm.Shape:
    """'2x2x2' (sockets x cores x threads)."""
    try:
        sockets, cores, threads = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not SOCKETSxCORESxTHREADS (2x2x2)") from None
    return vm.Shape(sockets=sockets, cores=cores, threads=threads)


def cmd_vm(args: argparse.Namespace) -> int:
    if args.vm_command == "create":
        shape = vm.Shape(**{**vars(args.shape), "numa_nodes": args.numa_nodes,
                            "memory_mb": args.memory, "trading_nic_node": args.trading_nic_node,
                            "trading_nic_model": args.trading_nic_model})
        made = vm.create(args.name, args.port, Path(args.image), shape)
        print(json.dumps(vm.connection(made), indent=2))
    elif args.vm_command == "destroy":
        for name in args.names:
            print(f"{name}: {'destroyed' if vm.destroy(name) else 'none'}")
    else:
        made = vm.instance(args.name)
        return subprocess.run(vm.ssh_argv(made, *args.remote), check=False).returncode
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quantbot-infra",
                                description="Provision and converge Quant-Bot environments.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def playbook_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--env", required=True)
        sp.add_argument("--inventory", help="inventory path (default: inventories/ENV)")
        sp.add_argument("--limit")

    run = sub.add_parser("run", help="run a playbook against an environment")
    run.add_argument("playbook", help="playbook name (site, verify, …) or path")
    playbook_options(run)
    run.add_argument("--tags")
    run.add_argument("--skip-tags")
    run.add_argument("-e", "--extra-vars", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--check", action="store_true", help="dry run: report what would change")
    run.add_argument("--diff", action="store_true", help="show the changes to files")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.set_defaults(func=cmd_run)

    inv = sub.add_parser("inventory", help="validate and show an environment's topology")
    inv.add_argument("--env", required=True)
    inv.add_argument("--inventory", type=Path, help="inventory path (default: inventories/ENV)")
    inv.add_argument("--json", action="store_true")
    inv.set_defaults(func=cmd_inventory)

    st = sub.add_parser("status", help="the fleet at a glance from Prometheus: targets, firing alerts")
    st.add_argument("--env", default="dev")
    st.add_argument("--prometheus", help="Prometheus URL (default: the env's first monitoring host)")
    st.add_argument("--password-file",
                    help="file holding the admin password "
                         "(default: $QB_PROMETHEUS_PASSWORD_FILE or the env's generated one)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    def cloud_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--inventory", type=Path, help="inventory path (default: inventories/ENV)")
        sp.add_argument("--endpoint-url", help="AWS: another endpoint than AWS's own (a local one)")
        sp.add_argument("--profile", help="AWS: the named profile (default: $AWS_PROFILE, or the "
                                          "usual AWS_* variables)")

    pl = sub.add_parser("plan", help="AWS: what 'up' would create, keep, update and destroy "
                                     "(changes nothing)")
    pl.add_argument("--env", required=True)
    cloud_options(pl)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plan)

    for name, func, text in (("up", cmd_up, "local: create, converge and verify; aws: plan, then apply"),
                             ("down", cmd_down, "remove what 'up' made")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("env", nargs="?")
        sp.add_argument("--env", dest="env_opt", metavar="ENV", help="the environment (or as the argument)")
        cloud_options(sp)
        sp.add_argument("--json", action="store_true")
        if name == "up":
            sp.add_argument("--yes", action="store_true", help="AWS: apply the plan without asking (CI)")
        else:
            sp.add_argument("--confirm", metavar="ENV", help="AWS: the environment's name, to destroy it")
            sp.add_argument("--delete-backups", action="store_true",
                            help="AWS: remove the off-site backup bucket too (kept by default)")
        sp.set_defaults(func=func)

    pp = sub.add_parser("patch", help="patch packages: freeze check and pre-flight plan first, then a "
                                      "canary and batches with health gates")
    playbook_options(pp)
    pp.add_argument("--plan", action="store_true", help="show the plan and change nothing")
    pp.add_argument("--security-only", action="store_true", help="only updates from security archives")
    pp.add_argument("--origin", action="append", default=[], metavar="ORIGIN:SUITE",
                    help="only updates from this archive (repeatable), e.g. Debian:bookworm-security")
    pp.add_argument("--canary", metavar="HOST", help="the host patched first, alone (default: the first one)")
    pp.add_argument("--reboot", choices=["auto", "never", "always"], default="auto",
                    help="auto: where the kernel changed or a package asks for it (default)")
    pp.add_argument("--resume", action="store_true", help="continue from the last run's resume point")
    pp.add_argument("--override-freeze", action="store_true",
                    help="patch inside a freeze window (needs --reason; recorded in the audit log)")
    pp.add_argument("--reason", help="why the freeze is overridden")
    pp.add_argument("--at", metavar="TIME", help="take TIME (ISO, with offset) as now for the freeze check")
    pp.add_argument("--json", action="store_true")
    pp.set_defaults(func=cmd_patch)

    dp = sub.add_parser("drift", help="what a converge would change, per host, role and task "
                                      "(check + diff of site.yml); exit 0 clean, 2 drift, 1 error")
    playbook_options(dp)
    dp.add_argument("--accepted", help="accepted drift (default: the inventory's drift-accepted.yml)")
    dp.add_argument("--no-metric", action="store_true",
                    help="do not write the hosts' drift metric (node-exporter textfile)")
    dp.add_argument("--json", action="store_true")
    dp.set_defaults(func=cmd_drift)

    vp = sub.add_parser("vm", help="QEMU VM test hosts for kernel-level roles (images/vm)")
    vsub = vp.add_subparsers(dest="vm_command", required=True)
    vc = vsub.add_parser("create", help="make and boot a VM; prints how to reach it (JSON)")
    vc.add_argument("name")
    vc.add_argument("--port", type=int, required=True, help="loopback port for its SSH")
    vc.add_argument("--image", required=True, help="base image (the path images/vm/build.sh prints)")
    vc.add_argument("--shape", type=_shape, default=vm.Shape(), metavar="SxCxT",
                    help="sockets x cores x threads (default 2x2x2)")
    vc.add_argument("--numa-nodes", type=int, default=2)
    vc.add_argument("--memory", type=int, default=2048, help="MiB (default 2048)")
    vc.add_argument("--trading-nic-node", type=int, default=1,
                    help="NUMA node of the second NIC (default 1)")
    vc.add_argument("--trading-nic-model", choices=vm.NIC_MODELS, default="virtio-net-pci",
                    help="e1000e gives the guest a NIC with a PTP hardware clock (default virtio-net-pci)")
    vd = vsub.add_parser("destroy", help="stop VMs and remove their disks and keys")
    vd.add_argument("names", nargs="+")
    vs = vsub.add_parser("ssh", help="run a command on a VM (or log in)")
    vs.add_argument("name")
    vs.add_argument("remote", nargs=argparse.REMAINDER)
    vp.set_defaults(func=cmd_vm)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TopologyError, RunError, paths.ProjectError, local.ProviderError, status.StatusError,
            AwsError, vm.VmError, drift.DriftError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
