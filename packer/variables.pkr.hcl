# Inputs of the image build. Every value can come from `-var`, a var file or
# PKR_VAR_<name>; tools/packer-validate.sh shows a complete, valid set.

variable "version" {
  type        = string
  description = "Release version (the repository's VERSION file): AMI name, tags and ocap-agent --version agree on it."

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.]+)?$", var.version))
    error_message = "The version must be semantic (MAJOR.MINOR.PATCH[-pre]), e.g. 1.4.0; pass -var version=$(cat VERSION)."
  }
}

variable "project" {
  type        = string
  default     = "ocap-workstations"
  description = "Project tag; matches ocap_project in playbooks/group_vars/all/project.yml."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.project))
    error_message = "The project must be lower-case letters, digits and dashes (2-41 characters)."
  }
}

variable "environment" {
  type        = string
  default     = "dev"
  description = "Environment tag (dev, staging, prod)."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "The environment must be one of dev, staging, prod."
  }
}

variable "aws_region" {
  type        = string
  default     = "us-east-1"
  description = "Region the build instance runs in and the AMI is registered in first."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "The aws_region must look like us-east-1 or eu-central-1."
  }
}

variable "instance_type" {
  type        = string
  default     = "m6i.xlarge"
  description = "Build instance type. The image runs on any x86_64 type; 4 vCPUs keep conda solves and MSI installs short."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\\.[0-9]*[a-z]+$", var.instance_type))
    error_message = "The instance_type must be an EC2 type name such as m6i.xlarge or g4dn.xlarge."
  }
}

variable "source_ami_name" {
  type        = string
  default     = "Windows_Server-2022-English-Full-Base-*"
  description = "Name filter for the base image; the most recent Amazon-owned match is used."

  validation {
    condition     = can(regex("^Windows_Server-2022-", var.source_ami_name))
    error_message = "The source_ami_name must select Amazon's Windows Server 2022 images (Windows_Server-2022-...): the roles target that release."
  }
}

variable "ami_name_prefix" {
  type        = string
  default     = "ocap-workstation"
  description = "AMI names are <prefix>-<version>-<UTC timestamp>."

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9()./_-]{2,80}$", var.ami_name_prefix))
    error_message = "The ami_name_prefix may hold letters, digits and ()./_- only (3-81 characters)."
  }
}

variable "root_volume_size_gb" {
  type        = number
  default     = 80
  description = "Root EBS volume (gp3) size in GiB; recordings are spooled here before upload."

  validation {
    condition     = var.root_volume_size_gb >= 50 && var.root_volume_size_gb <= 1024
    error_message = "The root_volume_size_gb must be between 50 and 1024: Windows plus conda environments need 50."
  }
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key (id, ARN or alias ARN) for the encrypted image; empty uses the account's default EBS key."

  validation {
    condition     = var.kms_key_id == "" || can(regex("^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+|[0-9a-f-]{36}|alias/.+)$", var.kms_key_id))
    error_message = "The kms_key_id must be empty, a key id, alias/NAME or a KMS key/alias ARN."
  }
}

variable "ami_regions" {
  type        = list(string)
  default     = []
  description = "More regions the encrypted AMI is copied to after the build."

  validation {
    condition     = length([for r in var.ami_regions : r if !can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", r))]) == 0
    error_message = "Every ami_regions entry must be a region name such as eu-west-1."
  }
}

variable "region_kms_key_ids" {
  type        = map(string)
  default     = {}
  description = "KMS key per copy region (needed with a customer key: keys are regional). Keys must be in ami_regions."
}

variable "deprecate_after_days" {
  type        = number
  default     = 180
  description = "Days after the build when EC2 marks the AMI deprecated; 0 never deprecates."

  validation {
    condition     = var.deprecate_after_days >= 0 && var.deprecate_after_days <= 3650 && floor(var.deprecate_after_days) == var.deprecate_after_days
    error_message = "The deprecate_after_days must be a whole number from 0 to 3650."
  }
}

variable "fast_launch_enabled" {
  type        = bool
  default     = false
  description = "Enable Windows Fast Launch (pre-provisioned snapshots) on the new AMI after the build. Costs snapshot storage and build-account instance time."
}

variable "fast_launch_target_resource_count" {
  type        = number
  default     = 5
  description = "Pre-provisioned snapshots Fast Launch keeps ready."

  validation {
    condition     = var.fast_launch_target_resource_count >= 1 && var.fast_launch_target_resource_count <= 50
    error_message = "The fast_launch_target_resource_count must be between 1 and 50."
  }
}

variable "fast_launch_max_parallel_launches" {
  type        = number
  default     = 6
  description = "Instances Fast Launch may start at once to prepare snapshots (EC2 requires at least 6)."

  validation {
    condition     = var.fast_launch_max_parallel_launches >= 6
    error_message = "The fast_launch_max_parallel_launches must be 6 or more (an EC2 API minimum)."
  }
}

variable "builder_cidrs" {
  type        = list(string)
  default     = []
  description = "CIDRs allowed to reach WinRM on the build instance; empty means only this machine's public address."

  validation {
    condition     = length([for c in var.builder_cidrs : c if !can(cidrhost(c, 0)) || c == "0.0.0.0/0"]) == 0
    error_message = "Every builder_cidrs entry must be a valid CIDR, and 0.0.0.0/0 is refused: the build listener must not face the internet."
  }
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty lets EC2 choose the default VPC."

  validation {
    condition     = var.subnet_id == "" || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "The subnet_id must be empty or subnet-xxxxxxxx."
  }
}

variable "associate_public_ip" {
  type        = bool
  default     = true
  description = "Give the build instance a public address (WinRM from the builder); false when building from inside the VPC."
}

variable "winrm_timeout" {
  type        = string
  default     = "30m"
  description = "How long to wait for WinRM after launch (password generation plus first boot)."

  validation {
    condition     = can(regex("^[0-9]+[hms]$", var.winrm_timeout))
    error_message = "The winrm_timeout must be a duration such as 30m."
  }
}

variable "ansible_verbosity" {
  type        = number
  default     = 0
  description = "Extra -v flags passed to ansible-playbook (0-4)."

  validation {
    condition     = var.ansible_verbosity >= 0 && var.ansible_verbosity <= 4
    error_message = "The ansible_verbosity must be between 0 and 4."
  }
}
