# Exact plugin versions: tools/install-tools.sh builds these two into
# .tools/packer-plugins, so `packer init` resolves them offline and a build
# never picks up a plugin release nobody has reviewed.
packer {
  required_version = ">= 1.11.2, < 2.0.0"

  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "= 1.2.1"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = "= 1.0.3"
    }
  }
}
