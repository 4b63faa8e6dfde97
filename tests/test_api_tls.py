"""The HTTP API on its own port with TLS (issue 21): a test CA made with ``cryptography``, verified by hvac
and by the remote helpers; a client that does not trust the CA is refused the handshake."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import time
import urllib.request

import hvac
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser import console_server, free_port
from vault_core import open_vault
from vault_core.errors import VaultError
from vault_core.integrations.remote import RemoteVault


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_ca_and_server_cert(folder) -> tuple[str, str, str]:
    """(ca.pem, server.pem, server.key): a CA and a certificate for 127.0.0.1 and localhost it signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("vault-core test CA")).issuer_name(_name("vault-core test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


def _wait(url: str, ca: str) -> None:
    context = ssl.create_default_context(cafile=ca)
    for _ in range(120):
        try:
            with urllib.request.urlopen(url + "/v1/sys/health", timeout=2, context=context):
                return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError("the API port did not answer")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_ca_and_server_cert(folder)
    vault = open_vault(folder / "vault", principal="owner")
    machines = vault.machines
    role_id = machines.create_machine("web")
    secret_id = machines.new_secret_id("web")
    vault.grant("web", ["read"], environment="production", subject_kind="user")
    vault.store_secret("db_url", "postgresql://tls@db/app", environment="production")
    api_port = free_port()
    server = console_server(folder / "vault")
    base = server.command
    server.command = lambda port: [*base(port), "--api-port", str(api_port), "--api-cert", cert, "--api-key", key]
    with server:
        url = f"https://127.0.0.1:{api_port}"
        _wait(url, ca)
        yield url, ca, role_id, secret_id
    vault.storage.dispose()


def test_hvac_over_tls_trusting_the_test_ca(tls):
    url, ca, role_id, secret_id = tls
    c = hvac.Client(url=url, verify=ca)
    c.auth.approle.login(role_id=role_id, secret_id=secret_id)
    got = c.secrets.kv.v2.read_secret("db_url", mount_point="production", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"value": "postgresql://tls@db/app"}


def test_a_client_without_the_ca_is_refused_and_the_remote_helper_verifies(tls):
    url, ca, role_id, secret_id = tls
    with pytest.raises(requests.exceptions.SSLError):
        hvac.Client(url=url).sys.read_health_status(method="GET")  # the system store does not know our CA
    assert RemoteVault(url, role_id=role_id, secret_id=secret_id, ca_file=ca).get_secret(
        "db_url", "production") == "postgresql://tls@db/app"
    with pytest.raises(VaultError, match="cannot reach"):  # TLS is always verified: no CA, no connection
        RemoteVault(url, role_id=role_id, secret_id=secret_id).get_secret("db_url", "production")
