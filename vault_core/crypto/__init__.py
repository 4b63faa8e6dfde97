"""The crypto barrier: the only place that encrypts or decrypts."""

from .barrier import Barrier
from .keyring import Keyring, KeyTerm
from .masterkey import MasterKeySource, generate_master_key, load_master_key, write_key_file
from .sealer import secret_aad

__all__ = [
    "Barrier",
    "Keyring",
    "KeyTerm",
    "MasterKeySource",
    "generate_master_key",
    "load_master_key",
    "secret_aad",
    "write_key_file",
]
