"""octsched-ssh: the ``ssh`` backend — jobs in tmux on remote hosts over SSH (see README.md).

- ``config``      the cluster file (TOML, or the research code's JSON)
- ``connection``  one host: asyncssh connection, SFTP, remote agent, on a loop thread
- ``backend``     ``SshBackend``: slots, stage, launch, poll, collect, cancel, adopt
- ``transfer``    checksums, input digests, safe remote names
- ``remote/``     what runs on a host: ``agent.py`` and ``jobwrap.sh`` (stdlib / sh only)
- ``check``, ``sync``, ``tasks``  ``invoke cluster.check`` and ``invoke cluster.sync``
- ``plugin``      the ``octcore`` entry point
"""
