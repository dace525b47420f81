{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "notte-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the resources: "<release>-<chart>", or the release name alone when it already
contains the chart name.
*/}}
{{- define "notte-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Namespace of the release, unless overridden.
*/}}
{{- define "notte-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "notte-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "notte-exporter.labels" -}}
helm.sh/chart: {{ include "notte-exporter.chart" . }}
{{ include "notte-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ include "notte-exporter.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: metrics
app.kubernetes.io/part-of: {{ include "notte-exporter.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels that select the exporter's pods; they must never change between upgrades.
*/}}
{{- define "notte-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "notte-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the pod runs as.
*/}}
{{- define "notte-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "notte-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: the chart's appVersion unless set.
*/}}
{{- define "notte-exporter.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Full image reference: [registry/]repository[:tag][@digest].
*/}}
{{- define "notte-exporter.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (include "notte-exporter.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the API key, and the key inside it; empty when no key is
configured (the demo mode needs none).
*/}}
{{- define "notte-exporter.secretName" -}}
{{- if .Values.notte.existingSecret.name }}
{{- .Values.notte.existingSecret.name }}
{{- else if .Values.notte.apiKey }}
{{- include "notte-exporter.fullname" . }}
{{- end }}
{{- end }}

{{- define "notte-exporter.secretKey" -}}
{{- if .Values.notte.existingSecret.name }}
{{- .Values.notte.existingSecret.key }}
{{- else }}
{{- "api-key" }}
{{- end }}
{{- end }}

{{/*
Directory the API key Secret is mounted into, and the file the exporter reads.
*/}}
{{- define "notte-exporter.apiKeyDir" -}}
/etc/notte-exporter/secret
{{- end }}

{{- define "notte-exporter.apiKeyFile" -}}
{{ include "notte-exporter.apiKeyDir" . }}/api-key
{{- end }}

{{/*
The exporter's web config (--web.config.file) as YAML, or nothing: web.config, with a
tls_server_config serving web.tls.existingSecret's certificate unless web.config has one.
*/}}
{{- define "notte-exporter.webConfig" -}}
{{- $config := deepCopy .Values.web.config }}
{{- if and .Values.web.tls.existingSecret (not (hasKey $config "tls_server_config")) }}
{{- $tlsDir := include "notte-exporter.tlsDir" . }}
{{- $_ := set $config "tls_server_config" (dict "cert_file" (printf "%s/tls.crt" $tlsDir) "key_file" (printf "%s/tls.key" $tlsDir)) }}
{{- end }}
{{- if $config }}
{{- toYaml $config }}
{{- end }}
{{- end }}

{{/*
"true" when the exporter serves HTTPS: the probes and the ServiceMonitor follow it.
*/}}
{{- define "notte-exporter.tlsOn" -}}
{{- if or .Values.web.tls.existingSecret .Values.web.config.tls_server_config }}true{{ end }}
{{- end }}

{{- define "notte-exporter.webConfigDir" -}}
/etc/notte-exporter/web
{{- end }}

{{- define "notte-exporter.tlsDir" -}}
/etc/notte-exporter/tls
{{- end }}

{{/*
The reaper's policy file (--reaper.config.file) as YAML: reaper.config, in dry run unless
it sets dry_run itself.
*/}}
{{- define "notte-exporter.reaperConfig" -}}
{{- include "notte-exporter.dryRunByDefault" .Values.reaper.config }}
{{- end }}

{{/*
A reaper policy file as YAML, from the policy given: in dry run unless it sets dry_run.
*/}}
{{- define "notte-exporter.dryRunByDefault" -}}
{{- $config := deepCopy . }}
{{- if not (hasKey $config "dry_run") }}
{{- $_ := set $config "dry_run" true }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{- define "notte-exporter.reaperDir" -}}
/etc/notte-exporter/reaper
{{- end }}

{{/*
Several accounts (accounts, --config.file). The file lives in a ConfigMap and names each key
by the path where its Secret key is mounted (one projected volume, a directory per account):
no key value is ever in the file, the ConfigMap or an argument.
*/}}
{{- define "notte-exporter.accountsDir" -}}
/etc/notte-exporter/accounts
{{- end }}

{{- define "notte-exporter.accountsFile" -}}
{{ include "notte-exporter.accountsDir" . }}/accounts.yaml
{{- end }}

{{- define "notte-exporter.accountKeysDir" -}}
/etc/notte-exporter/account-keys
{{- end }}

{{/*
The accounts file as YAML. notte.apiUrl and sessions.limit are the defaults of each
account's apiUrl and sessionsLimit; an account's reaperPolicy is a file of the same ConfigMap.
*/}}
{{- define "notte-exporter.accountsConfig" -}}
{{- $keysDir := include "notte-exporter.accountKeysDir" . }}
{{- $dir := include "notte-exporter.accountsDir" . }}
{{- $accounts := list }}
{{- range .Values.accounts }}
{{- $account := dict "name" .name "api_url" (default $.Values.notte.apiUrl .apiUrl) "key_file" (printf "%s/%s/key" $keysDir .name) }}
{{- $limit := default $.Values.sessions.limit .sessionsLimit }}
{{- if not (kindIs "invalid" $limit) }}
{{- $_ := set $account "sessions_limit" (int $limit) }}
{{- end }}
{{- if .reaperPolicy }}
{{- $_ := set $account "reaper_config_file" (printf "%s/reaper-%s.yaml" $dir .name) }}
{{- end }}
{{- $name := .name }}
{{- $named := list }}
{{- range .keys }}
{{- $named = append $named (dict "name" .name "key_file" (printf "%s/%s/keys/%s" $keysDir $name .name)) }}
{{- end }}
{{- if $named }}
{{- $_ := set $account "keys" $named }}
{{- end }}
{{- $accounts = append $accounts $account }}
{{- end }}
{{- toYaml (dict "accounts" $accounts) }}
{{- end }}

{{/*
Values the schema cannot express clearly: refuse them with a message that says what to do.
*/}}
{{- define "notte-exporter.validateValues" -}}
{{- if and .Values.notte.apiKey .Values.notte.existingSecret.name }}
{{- fail "notte.apiKey and notte.existingSecret.name are both set: set only one (existingSecret is preferred, so the key stays out of Helm values)" }}
{{- end }}
{{- if and .Values.reaper.enabled (not .Values.reaper.config.policies) }}
{{- fail "reaper.enabled needs reaper.config.policies: at least one policy with a name and idle_longer_than, older_than or both (docs/reaper.md)" }}
{{- end }}
{{- if .Values.accounts }}
{{- if or .Values.notte.apiKey .Values.notte.existingSecret.name }}
{{- fail "accounts and notte.apiKey or notte.existingSecret.name are both set: with accounts, each account names its key in accounts[].keySecret; leave notte.apiKey and notte.existingSecret.name empty" }}
{{- end }}
{{- if .Values.demo.enabled }}
{{- fail "accounts and demo.enabled are both set: the demo simulates accounts of its own; set only one" }}
{{- end }}
{{- if .Values.account }}
{{- fail "accounts and account are both set: with accounts, the exporter labels every series with its account itself; leave account empty" }}
{{- end }}
{{- if .Values.reaper.enabled }}
{{- fail "accounts and reaper.enabled are both set: with accounts, give each account its own policy in accounts[].reaperPolicy; leave reaper.enabled false" }}
{{- end }}
{{- if .Values.notte.onlyCurrentToken }}
{{- fail "accounts and notte.onlyCurrentToken are both set: with accounts, each account's key lists all of its sessions and accounts[].keys attribute them; leave notte.onlyCurrentToken false" }}
{{- end }}
{{- $seen := dict }}
{{- range .Values.accounts }}
{{- if hasKey $seen .name }}
{{- fail (printf "accounts: the name %q is used twice; each account needs a name of its own" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- $account := .name }}
{{- $keys := dict }}
{{- range .keys }}
{{- if hasKey $keys .name }}
{{- fail (printf "accounts: the key name %q is used twice in account %q; each key needs a name of its own" .name $account) }}
{{- end }}
{{- $_ := set $keys .name true }}
{{- end }}
{{- if and .reaperPolicy (not .reaperPolicy.policies) }}
{{- fail (printf "accounts: the reaperPolicy of account %q needs policies: at least one policy with a name and idle_longer_than, older_than or both (docs/reaper.md)" .name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) .Values.podDisruptionBudget.enabled }}
{{- fail "podDisruptionBudget: set either minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- end }}

{{/*
The exporter's command-line flags, one per line, from the values.
*/}}
{{- define "notte-exporter.args" -}}
- {{ printf "--web.listen-address=:%d" (int .Values.web.port) | quote }}
- {{ printf "--web.telemetry-path=%s" .Values.web.telemetryPath | quote }}
- {{ printf "--web.max-requests=%d" (int .Values.web.maxRequests) | quote }}
{{- if include "notte-exporter.webConfig" . }}
- {{ printf "--web.config.file=%s/web-config.yml" (include "notte-exporter.webConfigDir" .) | quote }}
{{- end }}
{{- if .Values.accounts }}
- {{ printf "--config.file=%s" (include "notte-exporter.accountsFile" .) | quote }}
{{- else }}
- {{ printf "--notte.api-url=%s" .Values.notte.apiUrl | quote }}
{{- if include "notte-exporter.secretName" . }}
- {{ printf "--notte.api-key-file=%s" (include "notte-exporter.apiKeyFile" .) | quote }}
{{- end }}
{{- end }}
- {{ printf "--notte.page-size=%d" (int .Values.notte.pageSize) | quote }}
- {{ printf "--notte.max-pages=%d" (int .Values.notte.maxPages) | quote }}
{{- if .Values.notte.onlyCurrentToken }}
- "--notte.only-current-token"
{{- end }}
- {{ printf "--notte.timeout=%v" .Values.notte.timeout | quote }}
- {{ printf "--notte.retries=%d" (int .Values.notte.retries) | quote }}
- {{ printf "--notte.concurrency=%d" (int .Values.notte.concurrency) | quote }}
- {{ printf "--notte.max-response-bytes=%v" .Values.notte.maxResponseBytes | quote }}
- {{ printf "--poll.interval=%v" .Values.poll.interval | quote }}
{{- if and (not (kindIs "invalid" .Values.poll.timeout)) (ne (toString .Values.poll.timeout) "") }}
- {{ printf "--poll.timeout=%v" .Values.poll.timeout | quote }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.sessions.limit)) (not .Values.accounts) }}
- {{ printf "--sessions.limit=%d" (int .Values.sessions.limit) | quote }}
{{- end }}
- {{ printf "--sessions.detail-limit=%d" (int .Values.sessions.detailLimit) | quote }}
- {{ printf "--sessions.idle-threshold=%v" .Values.sessions.idleThreshold | quote }}
- {{ printf "--sessions.overdue-grace=%v" .Values.sessions.overdueGrace | quote }}
- {{ printf "--sessions.lookup-budget=%d" (int .Values.sessions.lookupBudget) | quote }}
- {{ printf "--sessions.pending-timeout=%v" .Values.sessions.pendingTimeout | quote }}
{{- if .Values.usage.enabled }}
- {{ printf "--usage.interval=%v" .Values.usage.interval | quote }}
{{- else }}
- "--no-collector.usage"
{{- end }}
{{- if .Values.reaper.enabled }}
- {{ printf "--reaper.config.file=%s/reaper.yaml" (include "notte-exporter.reaperDir" .) | quote }}
{{- end }}
- {{ printf "--log.level=%s" .Values.log.level | quote }}
- {{ printf "--log.format=%s" .Values.log.format | quote }}
{{- if .Values.demo.enabled }}
- "--demo"
- {{ printf "--demo.profile=%s" .Values.demo.profile | quote }}
- {{ printf "--demo.seed=%d" (int .Values.demo.seed) | quote }}
- {{ printf "--demo.speed=%v" .Values.demo.speed | quote }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
