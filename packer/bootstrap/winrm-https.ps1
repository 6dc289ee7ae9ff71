<powershell>
# Build-time only: an HTTPS WinRM listener with a throw-away self-signed
# certificate, so Packer and Ansible never talk to the instance in clear text.
# roles/image_finalize removes the listener, the firewall rule and the
# certificate before sysprep; the names below are its defaults.
$ErrorActionPreference = 'Stop'
$ruleName = 'ocap-build-winrm-https'
$friendlyName = 'ocap-build-winrm'

Set-Service -Name WinRM -StartupType Automatic
Start-Service -Name WinRM

# The certificate expires in two days: long enough for any build, useless after.
$cert = New-SelfSignedCertificate -DnsName $env:COMPUTERNAME -CertStoreLocation 'Cert:\LocalMachine\My' `
  -FriendlyName $friendlyName -NotAfter (Get-Date).AddDays(2)

Get-ChildItem -Path WSMan:\localhost\Listener |
  Where-Object { $_.Keys -contains 'Transport=HTTPS' } |
  Remove-Item -Recurse -Force
New-Item -Path WSMan:\localhost\Listener -Transport HTTPS -Address * -CertificateThumbPrint $cert.Thumbprint -Force | Out-Null

# Long conda solves and MSI installs run inside one WinRM operation.
Set-Item -Path WSMan:\localhost\MaxTimeoutms -Value 1800000
Set-Item -Path WSMan:\localhost\Shell\MaxMemoryPerShellMB -Value 2048

if (-not (Get-NetFirewallRule -Name $ruleName -ErrorAction SilentlyContinue)) {
  New-NetFirewallRule -Name $ruleName -DisplayName 'WinRM HTTPS (image build only)' `
    -Direction Inbound -Protocol TCP -LocalPort 5986 -Action Allow -Profile Any | Out-Null
}
Restart-Service -Name WinRM
</powershell>
