locals {
  # One timestamp per run: AMI names must be unique, and a rebuild of the same
  # version (a fixed base image, a new installer) must not collide.
  build_stamp = formatdate("YYYYMMDD'T'hhmmss'Z'", timestamp())
  ami_name    = "${var.ami_name_prefix}-${var.version}-${local.build_stamp}"

  # Empty string means "no deprecation" to the amazon-ebs builder.
  deprecate_at = var.deprecate_after_days > 0 ? timeadd(timestamp(), "${var.deprecate_after_days * 24}h") : ""

  common_tags = {
    Project     = var.project
    Environment = var.environment
    Version     = var.version
    ManagedBy   = "packer"
  }

  # Image and snapshots: Name and Version are what release.yml and people
  # look for; SourceAMI records which Amazon base went in.
  image_tags = merge(local.common_tags, {
    Name          = local.ami_name
    Role          = "ocap-workstation"
    SourceAMI     = "{{ .SourceAMI }}"
    SourceAMIName = "{{ .SourceAMIName }}"
    BuildTime     = local.build_stamp
  })

  # The build instance and its volume. It has no Pool tag, so the fleet
  # inventory (playbooks/inventories/aws_ec2.yml selects tag-key Pool) never
  # picks it up.
  run_tags = merge(local.common_tags, {
    Name = "${var.ami_name_prefix}-build-${var.version}"
    Role = "image-build"
  })

  # The builder's address only, unless operators name the networks they build from.
  use_public_ip_rule = length(var.builder_cidrs) == 0

  # Fixed names shared with roles/image_finalize, which removes them before capture.
  winrm_port = 5986
}
