# Rotate ocap-agent's JSON-lines logs: run daily by the "ocap-agent log rotation"
# scheduled task (roles/agent). Each agent command opens the log when it
# starts; a file held open by a running command cannot be renamed on Windows,
# so that day's rotation is skipped and the next run catches up. Nothing is lost.
param(
    [Parameter(Mandatory = $true)][string]$LogDir,
    [int]$MaxSizeMB = 50,
    [int]$RetentionDays = 14
)
$ErrorActionPreference = 'Stop'
if (-not (Test-Path -LiteralPath $LogDir)) { exit 0 }

$current = Join-Path $LogDir 'agent.jsonl'
if ((Test-Path -LiteralPath $current) -and ((Get-Item -LiteralPath $current).Length -gt $MaxSizeMB * 1MB)) {
    $stamp = (Get-Date).ToUniversalTime().ToString('yyyyMMddTHHmmssZ')
    try {
        Rename-Item -LiteralPath $current -NewName "agent-$stamp.jsonl"
    } catch [System.IO.IOException] {
        Write-Output "agent.jsonl is in use; rotating it on the next run"
    }
}

$cutoff = (Get-Date).AddDays(-$RetentionDays)
Get-ChildItem -LiteralPath $LogDir -Filter 'agent-*.jsonl' -File |
    Where-Object { $_.LastWriteTime -lt $cutoff } |
    Remove-Item -Force
