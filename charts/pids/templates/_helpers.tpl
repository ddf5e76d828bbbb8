{{/* Chart name, possibly overridden. */}}
{{- define "pids.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources (at most 50 characters, leaving room for suffixes). */}}
{{- define "pids.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select the operator pods; never change them on a live release. */}}
{{- define "pids.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pids.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object of the chart. */}}
{{- define "pids.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pids.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pids
app.kubernetes.io/component: operator
{{- end }}

{{- define "pids.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pids.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pids.image" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) }}
{{- end }}

{{/* Namespaces the operator watches when not cluster-wide: the release namespace first. */}}
{{- define "pids.watchNamespaces" -}}
{{- $all := prepend .Values.watch.namespaces .Release.Namespace | uniq }}
{{- join "," $all }}
{{- end }}

{{/* Fails the render with a clear message on combinations the schema cannot express. */}}
{{- define "pids.validateValues" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.peering.enabled) }}
{{- fail "operator.replicas > 1 needs peering.enabled=true, or several replicas would act at once" }}
{{- end }}
{{- if and .Values.watch.clusterWide (gt (len .Values.watch.namespaces) 0) }}
{{- fail "watch.namespaces is ignored when watch.clusterWide=true; set only one of them" }}
{{- end }}
{{- if eq .Values.operator.healthPort .Values.operator.metricsPort }}
{{- fail "operator.healthPort and operator.metricsPort must differ" }}
{{- end }}
{{- end }}

{{/* The rules the operator needs in every namespace it serves. No delete on children:
       owner references let the garbage collector remove them with their PidsCluster. */}}
{{- define "pids.rbacRules" -}}
- apiGroups: [pids.dev]
  resources: [pidsclusters, pidstasks]
  verbs: [get, list, watch, patch, update]
- apiGroups: [pids.dev]
  resources: [pidsclusters/status, pidstasks/status]
  verbs: [get, patch, update]
- apiGroups: [pids.dev]
  resources: [pidsclusters/finalizers, pidstasks/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [services, configmaps, serviceaccounts, persistentvolumeclaims]
  verbs: [get, list, watch, create, patch, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, patch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
