"""AWS target: a verified raw image -> public AMIs in every configured region (issue 7).

publish_aws is the TargetHandler (see uploader/model.py); cleanup.py is `fedimg-aws-cleanup`.
"""

from uploader.targets.aws.publish import publish_aws

__all__ = ["publish_aws"]
