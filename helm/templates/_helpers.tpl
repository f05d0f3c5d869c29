{{/* Names, labels and the derived values every template shares. */}}

{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.fullname" -}}
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

{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: node
app.kubernetes.io/part-of: switchboard
{{- end }}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchboard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The token secret is the one secret no deployment may run without. */}}
{{- define "switchboard.authSecret" -}}
{{- required "auth.existingSecret is required: create a Secret holding the token HMAC key (at least 32 characters), e.g. `kubectl create secret generic switchboard-auth --from-literal=token-secret=$(openssl rand -hex 32)`, and set auth.existingSecret=switchboard-auth" .Values.auth.existingSecret }}
{{- end }}

{{/* True when the store is the per-pod SQLite file (no PostgreSQL secret given). */}}
{{- define "switchboard.sqlite" -}}
{{- if not .Values.store.existingSecret }}true{{- end }}
{{- end }}

{{/* Seconds of the preStop pause, 0 when disabled. */}}
{{- define "switchboard.preStopSeconds" -}}
{{- int (default 0 .Values.preStop.sleepSeconds) }}
{{- end }}

{{/* terminationGracePeriodSeconds: explicit, or drain + preStop + 10 s of margin. */}}
{{- define "switchboard.terminationGrace" -}}
{{- $floor := add (int .Values.server.drain_seconds) (int (include "switchboard.preStopSeconds" .)) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $floor 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $floor }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be larger than server.drain_seconds + preStop.sleepSeconds (%d), or the kubelet kills nodes mid-drain" (int .Values.terminationGracePeriodSeconds) $floor) }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
The Redis URL in fred's syntax, without credentials, for redis.mode:
  standalone  redis://h:p/DB
  sentinel    redis-sentinel://h1:p1/DB?sentinelServiceName=NAME&node=h2:p2...
  cluster     redis-cluster://h1:p1?node=h2:p2...
"userinfo" is inserted after the scheme (empty, or "user:$(REDIS_PASSWORD)@").
*/}}
{{- define "switchboard.redisUrl" -}}
{{- $r := .root.Values.redis }}
{{- $hosts := $r.hosts }}
{{- if not $hosts }}{{ fail "redis.hosts needs at least one host:port" }}{{ end }}
{{- $scheme := ternary "rediss" "redis" (eq (toString $r.tls) "true") }}
{{- $first := first $hosts }}
{{- $nodes := list }}
{{- range rest $hosts }}{{ $nodes = append $nodes (printf "node=%s" .) }}{{ end }}
{{- if eq $r.mode "standalone" }}
{{- if gt (len $hosts) 1 }}{{ fail "redis.mode=standalone takes exactly one entry in redis.hosts; use sentinel or cluster for more" }}{{ end }}
{{- printf "%s://%s%s/%d" $scheme .userinfo $first (int $r.database) }}
{{- else if eq $r.mode "sentinel" }}
{{- $q := prepend $nodes (printf "sentinelServiceName=%s" (required "redis.sentinelMasterName is required in sentinel mode" $r.sentinelMasterName)) }}
{{- printf "%s-sentinel://%s%s/%d?%s" $scheme .userinfo $first (int $r.database) (join "&" $q) }}
{{- else if eq $r.mode "cluster" }}
{{- if ne (int $r.database) 0 }}{{ fail "redis.database must be 0 in cluster mode (Redis Cluster has one database)" }}{{ end }}
{{- printf "%s-cluster://%s%s%s" $scheme .userinfo $first (ternary "" (printf "?%s" (join "&" $nodes)) (empty $nodes)) }}
{{- else }}
{{- fail (printf "redis.mode must be standalone, sentinel or cluster, not %q" $r.mode) }}
{{- end }}
{{- end }}

{{/* The PromQL matchers every alert adds. */}}
{{- define "switchboard.alertSelector" -}}
{{- default (printf "job=%q, namespace=%q" (include "switchboard.fullname" .) .Release.Namespace) .Values.metrics.prometheusRule.selector }}
{{- end }}
