"""The services the ``Vault`` wires together; each receives its collaborators in its constructor."""
