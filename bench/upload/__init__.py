"""Upload benchmark: the seeds' zip + upload_file, the AWS CLI, s5cmd and ocap-agent on one session."""
