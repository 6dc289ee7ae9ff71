source "amazon-ebs" "windows" {
  region        = var.aws_region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id == "" ? null : var.subnet_id

  associate_public_ip_address = var.associate_public_ip

  source_ami_filter {
    filters = {
      name                = var.source_ami_name
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name        = local.ami_name
  ami_description = "OCAP recording workstation ${var.version} (Windows Server 2022, DCV, OCAP, ocap-agent)"
  ami_regions     = var.ami_regions
  deprecate_at    = local.deprecate_at == "" ? null : local.deprecate_at

  # Encrypted at rest; copies to other regions need a key in that region when
  # a customer key is used (region_kms_key_ids).
  encrypt_boot       = true
  kms_key_id         = var.kms_key_id == "" ? null : var.kms_key_id
  region_kms_key_ids = length(var.region_kms_key_ids) == 0 ? null : var.region_kms_key_ids

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = var.root_volume_size_gb
    volume_type           = "gp3"
    delete_on_termination = true
    encrypted             = true
    kms_key_id            = var.kms_key_id == "" ? null : var.kms_key_id
  }

  # IMDSv2 only on the build instance. The image gets ImdsSupport=v2.0 in the
  # post-processor (this plugin version has no imds_support option).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags            = local.image_tags
  snapshot_tags   = local.image_tags
  run_tags        = local.run_tags
  run_volume_tags = local.run_tags

  # WinRM over HTTPS, enabled by the user data for this build only. The
  # Administrator password comes from GetPasswordData (decrypted with the
  # temporary key pair); NTLM avoids turning on Basic authentication.
  communicator   = "winrm"
  winrm_username = "Administrator"
  winrm_port     = local.winrm_port
  winrm_use_ssl  = true
  winrm_insecure = true # self-signed, throw-away certificate made by the user data
  winrm_use_ntlm = true
  winrm_timeout  = var.winrm_timeout
  user_data_file = "${path.root}/bootstrap/winrm-https.ps1"

  # The temporary security group admits WinRM from the builder only.
  temporary_security_group_source_public_ip = local.use_public_ip_rule
  temporary_security_group_source_cidrs     = local.use_public_ip_rule ? null : var.builder_cidrs

  # image_finalize ends with EC2Launch v2 sysprep --shutdown: the instance
  # stops itself, and Packer waits for that instead of stopping it early.
  disable_stop_instance = true

  # Windows needs a few minutes to publish the Administrator password.
  windows_password_timeout = "20m"
}
