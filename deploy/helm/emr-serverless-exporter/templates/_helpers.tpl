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
