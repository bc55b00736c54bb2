"""hosts.toml: a good file loads as typed hosts; a hostile one is refused with one line per
problem that names the host and key, never a secret."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.config import Settings
from core.hosts import LOCAL, EndpointKind, HostsFileError, HostTable, load_hosts, tls_context
from core.hosts.loading import MAX_FILE_BYTES, MAX_HOSTS
from core.hosts.model import Endpoint, format_size, parse_size

GAMES = {"arma3", "minecraft"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_tls(folder: Path) -> dict[str, Path]:
    """A CA and a client certificate it signed, as dockerd's clients expect (ca/cert/key)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test-ca"))
        .issuer_name(_name("test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("client"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(_pem_key(key))
    paths["key"].chmod(0o600)
    return paths


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(HostsFileError) as caught:
        load_hosts(path, **kwargs)  # type: ignore[arg-type]
    lines = caught.value.lines()
    assert lines[0] == str(caught.value)
    assert len(lines) == 1 + len(caught.value.problems)
    return [str(problem) for problem in caught.value.problems]


GOOD = (
    """
[[hosts]]
name = "local"
capacity = { servers = 2 }

[[hosts]]
name = "box-b"
endpoint = "tcp://127.0.0.1:2376"
tls = { ca = "certs/ca.pem", cert = "certs/cert.pem", key = "certs/key.pem" }
public_address = "203.0.113.7"
ports = "2302-2702"
capacity = { servers = 4, memory = "16G" }

[hosts.images]
arma3 = "languard/arma3:2.18"
minecraft = "registry.example.org:5000/mc/server@sha256:"""
    + "a" * 64
    + """"

[[hosts]]
name = "box-c"
endpoint = "ssh://deploy@10.0.0.12"
ports = [25565, 25665]
images = { minecraft = "languard/minecraft:1.21" }

[[hosts]]
name = "box-d"
endpoint = "unix:///run/other/docker.sock"
"""
)


def test_a_good_file_loads_every_host_with_local_first(tmp_path: Path) -> None:
    make_tls(tmp_path / "certs")
    table = load_hosts(write(tmp_path, GOOD), games=GAMES)
    assert table.names() == ["local", "box-b", "box-c", "box-d"]
    local, b, c, d = table.hosts
    assert local.is_local and local.capacity.servers == 2 and local.endpoint is None
    assert b.endpoint is not None and b.endpoint.kind is EndpointKind.TCP
    # aiodocker must be given https:// with its own TLS context (the reference's gotcha)
    assert b.endpoint.url == "https://127.0.0.1:2376"
    assert b.tls is not None and b.tls.ca == (tmp_path / "certs" / "ca.pem").resolve()
    assert b.address == "203.0.113.7"
    assert (b.ports.low, b.ports.high) == (2302, 2702) and 2400 in b.ports and 2703 not in b.ports
    assert b.capacity.memory == 16 * 1024**3 and b.capacity.servers == 4
    assert b.can_run("arma3") and b.can_run("minecraft")
    assert c.endpoint is not None and c.endpoint.url == "ssh://deploy@10.0.0.12:22"
    assert c.address == "10.0.0.12" and not c.can_run("arma3")
    assert (c.ports.low, c.ports.high) == (25565, 25665)
    assert d.endpoint is not None and d.endpoint.url == "unix:///run/other/docker.sock"
    assert d.address is None
    assert table.warnings == ("host box-d declares no images: it can run no server yet",)
    assert table.get("box-c") is c
    context = tls_context(b.tls)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_no_file_is_local_alone_unless_the_operator_named_one(tmp_path: Path) -> None:
    table = load_hosts(tmp_path / "hosts.toml")
    assert table.names() == [LOCAL] and table.hosts[0].is_local
    assert problems(tmp_path / "hosts.toml", required=True) == [
        f"the hosts file {tmp_path / 'hosts.toml'} does not exist"
    ]
    with pytest.raises(Exception, match="no host named nope"):
        HostTable.local_only().get("nope")


def test_the_setting_names_the_file_and_defaults_to_the_data_folder(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).hosts_path == tmp_path / "hosts.toml"
    assert Settings(data_dir=tmp_path, hosts_file="").hosts_path == tmp_path / "hosts.toml"
    other = tmp_path / "etc" / "hosts.toml"
    assert Settings(data_dir=tmp_path, hosts_file=str(other)).hosts_path == other


def test_bad_toml_is_one_line_with_its_position_and_no_content(tmp_path: Path) -> None:
    path = write(tmp_path, '[[hosts]]\nname = "b"\nendpoint = ssh://root:hunter2@x\n')
    (line,) = problems(path)
    assert line.startswith("the hosts file is not valid TOML: ")
    assert "line 3" in line and "hunter2" not in line


def test_binary_and_huge_files_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_bytes(b"\xff\xfe[[hosts]]\n")
    assert problems(path) == ["the hosts file is not UTF-8 text"]
    path.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    assert problems(path) == [
        "the hosts file is larger than 256 KiB; it declares a few hosts, not data"
    ]
    many = "".join(f'[[hosts]]\nname = "h{i}"\nendpoint = "ssh://h{i}"\n' for i in range(200))
    assert problems(write(tmp_path, many)) == [
        f"the hosts file declares 200 hosts; at most {MAX_HOSTS} are allowed"
    ]
    (tmp_path / "dir").mkdir()
    assert problems(tmp_path / "dir") == [f"the hosts file {tmp_path / 'dir'} is not a file"]


def test_unknown_keys_anywhere_are_named(tmp_path: Path) -> None:
    text = """
nodes = 3

[[hosts]]
name = "b"
endpoint = "ssh://b"
adress = "1.2.3.4"
capacity = { servers = 2, cpus = 4 }
"""
    assert problems(write(tmp_path, text)) == [
        "unknown key 'nodes' at the top of the hosts file (hosts are [[hosts]] tables)",
        "host b: unknown key 'capacity.cpus'",
        "host b: unknown key 'adress'",
    ]


def test_tls_files_must_exist_be_pem_and_match(tmp_path: Path) -> None:
    text = """
[[hosts]]
name = "b"
endpoint = "tcp://b.example.org:2376"
tls = { ca = "/nonexistent/ca.pem", cert = "/nonexistent/cert.pem", key = "k.pem" }
"""
    (tmp_path / "k.pem").write_text("not pem at all: secret-value-123\n")
    lines = problems(write(tmp_path, text))
    assert lines == [
        "host b: tls.ca /nonexistent/ca.pem does not exist",
        "host b: tls.cert /nonexistent/cert.pem does not exist",
        f"host b: tls.key {tmp_path.resolve() / 'k.pem'} is not a PEM file",
    ]
    assert not any("secret-value" in line for line in lines)

    good = make_tls(tmp_path / "one")
    other = make_tls(tmp_path / "two")
    mixed = f"""
[[hosts]]
name = "b"
endpoint = "tcp://127.0.0.1:2376"
tls = {{ ca = "{good["ca"]}", cert = "{good["cert"]}", key = "{other["key"]}" }}
"""
    assert problems(write(tmp_path, mixed)) == [
        f"host b: tls.cert {good['cert']} and tls.key {other['key']} do not load as a pair "
        "(a wrong file, or a key of another certificate)"
    ]
    not_a_ca = mixed.replace(str(other["key"]), str(good["key"])).replace(
        str(good["ca"]), str(good["key"])
    )
    assert problems(write(tmp_path, not_a_ca)) == [
        f"host b: tls.ca {good['key']} holds no usable CA certificate"
    ]


def test_a_passphrase_key_is_refused_and_an_open_key_is_a_warning(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "certs")
    text = f"""
[[hosts]]
name = "b"
endpoint = "tcp://127.0.0.1:2376"
tls = {{ ca = "{tls["ca"]}", cert = "{tls["cert"]}", key = "{tls["key"]}" }}
images = {{ arma3 = "languard/arma3" }}
"""
    tls["key"].chmod(0o644)
    table = load_hosts(write(tmp_path, text))
    assert table.warnings == (
        f"host b: tls.key {tls['key']} is readable by other users; chmod 600 it",
    )
    key = serialization.load_pem_private_key(tls["key"].read_bytes(), None)
    tls["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    )
    # refused up front: OpenSSL must never sit prompting for a passphrase at start
    assert problems(write(tmp_path, text)) == [
        f"host b: tls.key {tls['key']} is protected by a passphrase; the bot needs it "
        "unencrypted (keep it chmod 600)"
    ]


def test_endpoints_are_checked_and_never_echo_a_password(tmp_path: Path) -> None:
    cases = {
        "ftp://b": "must start with unix://, tcp:// or ssh:// (e.g. tcp://203.0.113.7:2376)",
        "tcp://b.example.org": "a tcp endpoint needs a port: tcp://b.example.org:2376",
        "tcp://b:99999": "has a port that is not a number from 1 to 65535",
        "tcp://b:2376/x": "a tcp endpoint takes no path",
        "unix://docker.sock": "a unix endpoint names an absolute socket path: "
        "unix:///var/run/docker.sock",
        "ssh://root:hunter2@b": "holds a password; use a TLS certificate or an SSH key instead",
        "ssh://u@b/run/docker.sock": "an ssh endpoint takes no socket path (the client ignores it)",
        "ssh://u@bad_host!": "'bad_host!' is not a host name or IP address",
        "tcp://b:2376?x=1": "takes no ?query or #fragment",
    }
    text = "".join(
        f'[[hosts]]\nname = "h{i}"\nendpoint = "{endpoint}"\n' for i, endpoint in enumerate(cases)
    )
    lines = problems(write(tmp_path, text))
    assert lines == [f"host h{i}: endpoint {reason}" for i, reason in enumerate(cases.values())]
    assert not any("hunter2" in line for line in lines)


def test_tls_is_required_for_tcp_only_and_local_takes_no_engine(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "certs")
    text = f"""
[[hosts]]
name = "local"
endpoint = "unix:///var/run/docker.sock"

[[hosts]]
name = "b"
endpoint = "tcp://10.0.0.2:2376"

[[hosts]]
name = "c"
endpoint = "ssh://c"
tls = {{ ca = "{tls["ca"]}", cert = "{tls["cert"]}", key = "{tls["key"]}" }}

[[hosts]]
name = "d"
"""
    assert problems(write(tmp_path, text)) == [
        "host local runs servers as local processes: it takes no endpoint, tls or images",
        "host b: a tcp endpoint needs a tls table with ca, cert and key: without it anyone "
        "who reaches the port is root on that machine",
        "host c: tls only applies to a tcp endpoint",
        "host d: endpoint is missing (unix://, tcp:// or ssh://)",
    ]


def test_bad_ports_names_capacity_and_images(tmp_path: Path) -> None:
    text = """
[[hosts]]
name = "a"
endpoint = "ssh://a"
ports = "80-90"

[[hosts]]
name = "b"
endpoint = "ssh://b"
ports = "3000-2000"

[[hosts]]
name = "c"
endpoint = "ssh://c"
ports = [1, 2, 3]

[[hosts]]
name = "Box 4"
endpoint = "ssh://d"

[[hosts]]
endpoint = "ssh://e"

[[hosts]]
name = "f"
endpoint = "ssh://f"
capacity = { servers = 0, memory = 16 }

[[hosts]]
name = "g"
endpoint = "ssh://g"
images = { arma3 = "Languard/ARMA", dayz = "languard/dayz" }
"""
    assert problems(write(tmp_path, text), games=GAMES) == [
        "host a: ports must go from a low port to a higher one, within 1024-65535",
        "host b: ports must go from a low port to a higher one, within 1024-65535",
        'host c: ports must be a range such as "2302-2702" or [2302, 2702]',
        "host Box 4: name a host name is 1 to 32 lowercase letters, digits, - or _ (e.g. box-2)",
        "host #5: name is missing",
        "host f: capacity.servers: Input should be greater than or equal to 1",
        'host f: capacity.memory must be a size with a unit in quotes, e.g. "16G" or "512M"',
        "host g: images the image of arma3 is not an image reference (e.g. languard/arma3:1)",
    ]
    dayz = text.replace('arma3 = "Languard/ARMA", ', "")
    assert problems(write(tmp_path, dayz), games=GAMES)[-1] == (
        "host g: images has no game 'dayz' (known: arma3, minecraft)"
    )


def test_duplicate_names_and_engines_are_refused(tmp_path: Path) -> None:
    text = """
[[hosts]]
name = "b"
endpoint = "ssh://u@b.example.org"

[[hosts]]
name = "b"
endpoint = "ssh://other"

[[hosts]]
name = "c"
endpoint = "unix:///run/docker.sock"

[[hosts]]
name = "d"
endpoint = "unix:///run/docker.sock"

[[hosts]]
name = "local"

[[hosts]]
name = "local"
"""
    assert problems(write(tmp_path, text)) == [
        "host b is declared more than once",
        "host local is declared more than once",
        "hosts c and d use the same endpoint unix:///run/docker.sock",
    ]


def test_hosts_not_written_as_tables(tmp_path: Path) -> None:
    assert problems(write(tmp_path, 'hosts = "b"\n')) == [
        "hosts must be written as [[hosts]] tables"
    ]
    assert problems(write(tmp_path, "hosts = [1]\n")) == ["host #1: is not a table"]


def test_sizes_parse_and_print_in_binary_units() -> None:
    assert parse_size("16G") == parse_size("16 GiB") == parse_size("16gb") == 16 * 1024**3
    assert parse_size("512M") == 512 * 1024**2 and parse_size("1.5g") == 1536 * 1024**2
    for bad in ("16", 16, "1K", "lots", True, "99999T"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert format_size(16 * 1024**3) == "16 GiB"
    assert format_size(1536 * 1024**2) == "1.5 GiB"
    assert format_size(512) == "512 B"


def test_ipv6_endpoints_keep_their_brackets() -> None:
    endpoint = Endpoint.parse("tcp://[2001:db8::7]:2376")
    assert endpoint.host == "2001:db8::7"
    assert endpoint.url == "https://[2001:db8::7]:2376"
    assert str(endpoint) == "tcp://[2001:db8::7]:2376"


def test_every_problem_is_a_translatable_core_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[[hosts]]\nname = "b"\nendpoint = "tcp://b"\nports = "1-2"\n')
    with pytest.raises(HostsFileError) as caught:
        load_hosts(path)
    error = caught.value
    assert error.template.startswith("the hosts file {path} has {count} problem(s)")
    assert error.params["count"] == 2 == len(error.problems)
    reasons = [problem.params["reason"] for problem in error.problems]
    assert all(hasattr(reason, "template") for reason in reasons)


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    path = blocker / "hosts.toml"
    assert problems(path) == [f"the hosts file {path} cannot be read (Not a directory)"]


def test_a_file_full_of_mistakes_prints_a_bounded_list(tmp_path: Path) -> None:
    text = "".join(f'[[hosts]]\nname = "h{i}"\nendpoint = "ftp://h{i}"\n' for i in range(MAX_HOSTS))
    with pytest.raises(HostsFileError) as caught:
        load_hosts(write(tmp_path, text))
    lines = caught.value.lines()
    assert len(caught.value.problems) == MAX_HOSTS
    assert len(lines) == 1 + 40 + 1
    assert lines[1].startswith("  - host h0: endpoint must start with unix://")
    assert lines[-1] == f"  - … and {MAX_HOSTS - 40} more"
