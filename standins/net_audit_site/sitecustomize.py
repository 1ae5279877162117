"""Loaded by Python at start when this directory is on PYTHONPATH: if $FEDIMG_NET_AUDIT_LOG
names a file, every host the process tries to reach is appended to it (standins.net_audit)."""

import os

if os.environ.get("FEDIMG_NET_AUDIT_LOG"):
    from standins import net_audit

    net_audit.record_to(os.environ["FEDIMG_NET_AUDIT_LOG"])
