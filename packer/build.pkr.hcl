build {
  name    = "ocap-workstation"
  sources = ["source.amazon-ebs.windows"]

  # Every change to the image is an Ansible role (playbooks/build.yml), run
  # straight at the instance over WinRM HTTPS: no proxy, no SSH.
  provisioner "ansible" {
    playbook_file = abspath("${path.root}/../playbooks/build.yml")
    user          = "Administrator"
    use_proxy     = false
    groups        = ["ocap_build"]
    extra_arguments = concat(
      [
        "--extra-vars", "ocap_version=${var.version}",
        "--extra-vars", "ocap_environment=${var.environment}",
        "--extra-vars", "ocap_project=${var.project}",
        "--extra-vars", "ansible_winrm_transport=ntlm",
        "--extra-vars", "ansible_winrm_scheme=https",
        # The listener's certificate is self-signed and lives only as long as the build.
        "--extra-vars", "ansible_winrm_server_cert_validation=ignore",
        "--extra-vars", "ansible_winrm_operation_timeout_sec=120",
        "--extra-vars", "ansible_winrm_read_timeout_sec=150",
      ],
      var.ansible_verbosity > 0 ? ["-${join("", [for i in range(var.ansible_verbosity) : "v"])}"] : []
    )
    ansible_env_vars = [
      # The roles and module paths in ansible.cfg resolve relative to it.
      "ANSIBLE_CONFIG=${abspath("${path.root}/../ansible.cfg")}",
      "ANSIBLE_FORCE_COLOR=1",
    ]
  }

  # The manifest is the hand-off to playbooks/release.yml, which reads
  # builds[-1].artifact_id ("region:ami-id,...").
  post-processors {
    post-processor "manifest" {
      output     = "${path.root}/manifest.json"
      strip_path = true
      custom_data = {
        version     = var.version
        ami_name    = local.ami_name
        environment = var.environment
        regions     = join(",", concat([var.aws_region], var.ami_regions))
      }
    }

    # What this plugin version cannot set at build time: IMDSv2-only on the
    # image itself and, when asked for, Windows Fast Launch. The script reads
    # this run's entry from the manifest and calls the EC2 API in each region.
    post-processor "shell-local" {
      environment_vars = [
        "OCAP_MANIFEST=${abspath("${path.root}/manifest.json")}",
        "OCAP_FAST_LAUNCH=${var.fast_launch_enabled ? "1" : "0"}",
        "OCAP_FAST_LAUNCH_TARGET=${var.fast_launch_target_resource_count}",
        "OCAP_FAST_LAUNCH_PARALLEL=${var.fast_launch_max_parallel_launches}",
      ]
      # python3 of the project's .venv (boto3): run packer with .venv/bin on PATH.
      inline = ["python3 '${abspath("${path.root}/scripts/finish_image.py")}'"]
    }
  }
}
