# Seal the image: the last thing the build runs (roles/image_finalize).
# Started detached: it waits for the WinRM call that launched it to return,
# removes everything the build's user data added for remote access, then
# hands over to EC2Launch v2, whose sysprep shuts the instance down.
param(
    [Parameter(Mandatory = $true)][string]$FirewallRule,
    [Parameter(Mandatory = $true)][string]$CertFriendlyName,
    [Parameter(Mandatory = $true)][string]$Ec2Launch,
    [int]$DelaySeconds = 15
)
$ErrorActionPreference = 'Stop'
Start-Sleep -Seconds $DelaySeconds

# The HTTPS listener, its firewall rule and its throw-away certificate.
Get-ChildItem -Path WSMan:\localhost\Listener |
    Where-Object { $_.Keys -contains 'Transport=HTTPS' } |
    Remove-Item -Recurse -Force
Get-NetFirewallRule -Name $FirewallRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
Get-ChildItem -Path Cert:\LocalMachine\My |
    Where-Object { $_.FriendlyName -eq $CertFriendlyName } |
    Remove-Item -Force

# This script must not ship in the image either.
Remove-Item -LiteralPath $PSCommandPath -Force

# First-boot state (password generation, user data, instance-specific
# settings) for every instance launched from the image, then generalize and stop.
& $Ec2Launch reset --clean --block
if ($LASTEXITCODE -ne 0) { throw "EC2Launch reset failed with exit code $LASTEXITCODE" }
& $Ec2Launch sysprep --clean --shutdown
