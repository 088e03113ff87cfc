{{/* The chart name, or nameOverride. */}}
{{- define "emr-serverless-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's resources: fullnameOverride, or <release>-<name>. */}}
{{- define "emr-serverless-exporter.fullname" -}}
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

{{/* name-version for the helm.sh/chart label. */}}
{{- define "emr-serverless-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods; never change them on upgrade. */}}
{{- define "emr-serverless-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "emr-serverless-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The standard labels of every resource. */}}
{{- define "emr-serverless-exporter.labels" -}}
helm.sh/chart: {{ include "emr-serverless-exporter.chart" . }}
{{ include "emr-serverless-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: exporter
app.kubernetes.io/part-of: emr-serverless-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The container image: registry/repository:tag, or registry/repository@digest. */}}
{{- define "emr-serverless-exporter.image" -}}
{{- $registry := .Values.image.registry -}}
{{- if and .Values.global .Values.global.imageRegistry }}
{{- $registry = .Values.global.imageRegistry -}}
{{- end }}
{{- $repository := ternary (printf "%s/%s" $registry .Values.image.repository) .Values.image.repository (ne $registry "") -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end }}

{{/* "true" when the pods shard the applications between them (a StatefulSet), else empty. */}}
{{- define "emr-serverless-exporter.sharded" -}}
{{- if or .Values.sharding.enabled (gt (int .Values.replicaCount) 1) -}}
true
{{- end -}}
{{- end }}

{{/* The pod label the StatefulSet controller sets to the pod's ordinal (Kubernetes 1.28+). */}}
{{- define "emr-serverless-exporter.podIndexLabel" -}}
apps.kubernetes.io/pod-index
{{- end }}

{{/* The ServiceAccount name. */}}
{{- define "emr-serverless-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "emr-serverless-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where the configuration is mounted; the image's CMD uses the same path. */}}
{{- define "emr-serverless-exporter.configDir" -}}
/etc/emr-serverless-exporter
{{- end }}

{{/* Where web.yml and the keys of tls.existingSecret are mounted (one projected volume). */}}
{{- define "emr-serverless-exporter.webConfigDir" -}}
/etc/emr-serverless-exporter-web
{{- end }}

{{/* The Secret holding web.yml. */}}
{{- define "emr-serverless-exporter.webConfigSecret" -}}
{{- .Values.webConfig.existingSecret | default (printf "%s-web-config" (include "emr-serverless-exporter.fullname" .)) }}
{{- end }}

{{/* Settings that contradict each other fail the render with the reason. */}}
{{- define "emr-serverless-exporter.checkWebConfig" -}}
{{- if and .Values.tls.enabled (not .Values.webConfig.enabled) }}
{{- fail "tls.enabled needs webConfig.enabled: TLS is configured in the web config (tls_server_config)" }}
{{- end }}
{{- if and .Values.webConfig.enabled (not .Values.webConfig.existingSecret) (not .Values.webConfig.content) }}
{{- fail "webConfig.enabled needs webConfig.existingSecret or webConfig.content" }}
{{- end }}
{{- if and .Values.tls.clientCertificates (not .Values.tls.enabled) }}
{{- fail "tls.clientCertificates needs tls.enabled" }}
{{- end }}
{{- end }}

{{/* Sharding takes each pod's shard from the apps.kubernetes.io/pod-index label, which the StatefulSet
controller sets from Kubernetes 1.28 on (PodIndexLabel, beta and on by default; GA in 1.32). */}}
{{- define "emr-serverless-exporter.checkSharding" -}}
{{- if and (include "emr-serverless-exporter.sharded" .) (not (semverCompare ">=1.28.0-0" .Capabilities.KubeVersion.Version)) }}
{{- fail (printf "sharding (replicaCount > 1 or sharding.enabled) needs Kubernetes 1.28 or newer (the apps.kubernetes.io/pod-index pod label), this is %s: run one replica" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (eq (toString .Values.podDisruptionBudget.minAvailable) "") (eq (toString .Values.podDisruptionBudget.maxUnavailable) "") }}
{{- fail "podDisruptionBudget.enabled needs podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable" }}
{{- end }}
{{- end }}

{{/* Whether the values give the exporter a region: "true" or empty (the NOTES warn when empty). */}}
{{- define "emr-serverless-exporter.hasRegion" -}}
{{- $found := .Values.region -}}
{{- range .Values.env }}
{{- if has .name (list "AWS_REGION" "AWS_DEFAULT_REGION") }}{{ $found = true }}{{ end }}
{{- end }}
{{- $targets := .Values.config.targets | default list -}}
{{- if $targets }}
{{- $all := true -}}
{{- range $targets }}{{ if not .region }}{{ $all = false }}{{ end }}{{ end }}
{{- if $all }}{{ $found = true }}{{ end }}
{{- end }}
{{- if $found }}true{{ end -}}
{{- end }}
