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

{{/* True when chat files go to S3 (files.url s3://...). */}}
{{- define "switchboard.filesS3" -}}
{{- if hasPrefix "s3://" (toString .Values.files.url) }}true{{- end }}
{{- end }}

{{/* The directory of a local files.url (file:///dir or /dir), where the files volume is mounted; empty for S3. */}}
{{- define "switchboard.filesDir" -}}
{{- $u := toString .Values.files.url }}
{{- if not (hasPrefix "s3://" $u) }}
{{- clean (trimPrefix "file://" $u) }}
{{- end }}
{{- end }}

{{/* Refuses files settings that would lose or scatter chat files, or leave credentials unused. */}}
{{- define "switchboard.validateFiles" -}}
{{- $f := .Values.files }}
{{- $u := toString $f.url }}
{{- $multi := or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}
{{- if include "switchboard.filesS3" . }}
{{- if $f.sharedVolume }}
{{- fail (printf "files.sharedVolume (%s) is set but files.url is %s: S3 needs no volume; clear files.sharedVolume or use a local files.url" $f.sharedVolume $u) }}
{{- end }}
{{- else }}
{{- if and (contains "://" $u) (not (hasPrefix "file:///" $u)) }}
{{- fail (printf "files.url (%s) must be s3://bucket/prefix, file:///abs/dir or /abs/dir" $u) }}
{{- end }}
{{- if and $multi (not $f.sharedVolume) }}
{{- fail (printf "files.url (%s) is a directory inside each pod, so with more than one replica (or autoscaling) every node would keep its own chat files and downloads would fail on the others: set files.url=s3://bucket/prefix (credentials in files.s3.existingSecret), or files.sharedVolume to a ReadWriteMany PersistentVolumeClaim the chart mounts at that directory" $u) }}
{{- end }}
{{- $dir := include "switchboard.filesDir" . }}
{{- if not (isAbs $dir) }}
{{- fail (printf "files.url (%s) is relative to the container's working directory, on a read-only root filesystem: use an absolute directory (file:///var/lib/switchboard/files, the default), on which the chart mounts the files volume, or s3://bucket/prefix" $u) }}
{{- end }}
{{- $taken := list "/" "/etc/switchboard" "/tmp" }}
{{- if include "switchboard.sqlite" . }}{{ $taken = append $taken (dir .Values.store.sqlitePath) }}{{ end }}
{{- if has $dir $taken }}
{{- fail (printf "files.url (%s) points at %s, which the chart already mounts (or the root): choose a directory of its own, e.g. file:///var/lib/switchboard/files" $u $dir) }}
{{- end }}
{{- if $f.s3.existingSecret }}
{{- fail (printf "files.s3.existingSecret (%s) is set but files.url (%s) is not s3://: the credentials would be unused; set files.url=s3://bucket/prefix or clear files.s3.existingSecret" $f.s3.existingSecret $u) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Refuses keep-alive settings that would close healthy WebSockets or let a dead link
outlast the grace periods (the rule of src/config.rs), and time bounds that cannot hold. */}}
{{- define "switchboard.validateKeepalive" -}}
{{- $l := .Values.limits }}
{{- if lt (int64 $l.idle_timeout_ms) (mul 2 (int64 $l.ping_interval_ms)) }}
{{- fail (printf "limits.idle_timeout_ms (%d) must be at least twice limits.ping_interval_ms (%d): clients ping that often, and one late ping must not close a healthy connection" (int64 $l.idle_timeout_ms) (int64 $l.ping_interval_ms)) }}
{{- end }}
{{- range $key := list "visitor_grace_ms" "agent_grace_ms" }}
{{- $grace := int64 (index $.Values.chat $key) }}
{{- if gt (mul 6 (int64 $l.ping_interval_ms)) $grace }}
{{- fail (printf "limits.ping_interval_ms (%d) must be at most a sixth of chat.%s (%d): a client needs up to 3.5 ping intervals to notice a dead link and reach another node, well within the grace period" (int64 $l.ping_interval_ms) $key $grace) }}
{{- end }}
{{- end }}
{{- if gt (int64 .Values.store.lock_timeout_ms) (int64 .Values.store.statement_timeout_ms) }}
{{- fail (printf "store.lock_timeout_ms (%d) must not exceed store.statement_timeout_ms (%d): a lock wait is part of a statement" (int64 .Values.store.lock_timeout_ms) (int64 .Values.store.statement_timeout_ms)) }}
{{- end }}
{{- if le (mul (int64 .Values.probes.readiness.timeoutSeconds) 1000) (int64 .Values.server.ready_timeout_ms) }}
{{- fail (printf "probes.readiness.timeoutSeconds (%ds) must be longer than server.ready_timeout_ms (%dms), or the kubelet gives up before /readyz says which dependency fails" (int64 .Values.probes.readiness.timeoutSeconds) (int64 .Values.server.ready_timeout_ms)) }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.nginx.enabled (le (mul (int64 .Values.ingress.nginx.proxyReadTimeout) 1000) (int64 $l.ping_interval_ms)) }}
{{- fail (printf "ingress.nginx.proxyReadTimeout (%ds) must be longer than limits.ping_interval_ms (%dms), or the ingress closes WebSockets between two pings" (int64 .Values.ingress.nginx.proxyReadTimeout) (int64 $l.ping_interval_ms)) }}
{{- end }}
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
