"""Reading the machine's apt configuration in both of apt's formats."""

from quantbot_infra.aptsources import mirror

MIRROR = "http://mirror.invalid/debian"
SECURITY = "http://mirror.invalid/debian-security"


def write(root, name, text):
    path = root / "etc" / "apt" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_deb822_sources(tmp_path):
    write(tmp_path, "sources.list.d/debian.sources", f"""\
Types: deb
URIs: {MIRROR}/
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main
""")
    assert mirror("debian", str(tmp_path)) == MIRROR
    assert mirror("debian-security", str(tmp_path)) == SECURITY


def test_one_line_sources_with_options_and_comments(tmp_path):
    write(tmp_path, "sources.list", f"""\
# deb http://old.invalid/debian bookworm main
deb-src {MIRROR} bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] {MIRROR} bookworm main
deb {SECURITY} bookworm-security main
""")
    assert mirror("debian", str(tmp_path)) == MIRROR
    assert mirror("debian-security", str(tmp_path)) == SECURITY


def test_disabled_and_source_only_stanzas_are_skipped(tmp_path):
    write(tmp_path, "sources.list.d/a.sources", f"""\
Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm

Enabled: no
Types: deb
URIs: http://off.invalid/debian
Suites: bookworm

Types: deb
URIs: {MIRROR}
Suites: bookworm
""")
    assert mirror("debian", str(tmp_path)) == MIRROR
    assert mirror("debian-security", str(tmp_path)) is None


def test_no_configuration(tmp_path):
    assert mirror("debian", str(tmp_path)) is None
