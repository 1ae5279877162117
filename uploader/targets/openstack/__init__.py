"""OpenStack target: a verified Generic qcow2 -> an active Glance image in every configured cloud.

publish_openstack is the TargetHandler (see uploader/model.py); config.py owns the [openstack]
section; glance.py talks to one cloud; cleanup.py is `fedimg-openstack-cleanup`.
"""

from uploader.targets.openstack.publish import publish_openstack

__all__ = ["publish_openstack"]
